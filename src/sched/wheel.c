/* wheel.c - hierarchical timing wheel: 6 levels of 64 slots, 1 ms ticks.
 *
 * Digits. Write a tick in base 64: digit L of tick t is (t >> 6L) & 63. Level
 * L slot s holds nodes whose expiry has digit L equal to s; the slot's range
 * is the 64^L ticks sharing all digits >= L with its start.
 *
 * Placement. A node due at E, inserted when the wheel stands at now < E, goes
 * to level L = the highest digit in which E and now differ, slot = digit L of
 * E. Above L they agree and E > now, so E's digit L is strictly greater than
 * now's: every occupied slot starts after now, in now's current rotation of
 * that level. Consequently a level-L slot starts before the end of now's
 * level-(L+1) slot, and every level-(L+1) slot starts at or after it: the
 * lowest non-empty level always holds the earliest occupied slot, and its
 * first occupied slot after now's digit is one bit scan away. Level 0 slots
 * span one tick, so every node in one has exactly the slot's start as expiry.
 *
 * Beyond the wheel. If E and now differ above the top digit (E is 2^36 or
 * more ticks away, roughly), the node goes to the top level at the furthest
 * slot whose start is still <= E: at digit now5 + 64 when E's top digit is
 * further than that, which is slot now5 & 63 one rotation ahead (that slot is
 * never otherwise occupied, as no node has now's own digit at its level). The
 * top level is therefore read cyclically: occupied digits lie in (now5,
 * now5 + 64], and the rotate-then-scan below finds the first one. Lower levels
 * are read the same way; for them the cycle never wraps.
 *
 * Advancing. advance() repeatedly takes the earliest occupied slot; while it
 * starts at or before the target, the wheel jumps to its start (empty time is
 * skipped, never walked) and empties it. A level-0 slot expires whole. A
 * higher slot cascades: nodes due exactly at its start expire, the rest are
 * re-placed relative to the new now and land on a strictly lower level (they
 * now differ from now below L), except clamped far nodes, which go back to the
 * top level one rotation further on.
 *
 * Why nothing fires early: a node expires only when now has reached its
 * expiry - at its level-0 slot's start, which equals its expiry, or in a
 * cascade at a start equal to its expiry. Why nothing fires late: a slot's
 * start is <= every expiry in it, and slots are emptied in order of start up
 * to the target, so a node due by the target is cascaded down until it
 * expires within the same advance. Events come in increasing tick order and
 * each expires only nodes due at that tick, so the expired list is sorted
 * without sorting. Past deadlines are stored as now + 1, so they too keep the
 * order (and are returned by the first advance that moves now at all).
 *
 * Cost: add and del are O(1); advance is O(expired + cascaded + 1), where
 * each node cascades at most five times (plus once per 2^36 ticks if far).
 */
#include "wheel.h"

#include <assert.h>

#include "../base/cpu.h"
#include "../base/list.h"

#define WEFT__WBITS 6
#define WEFT__WTOP (WEFT_WHEEL_LEVELS - 1)
#define WEFT__WTOP_SHIFT (WEFT__WBITS * WEFT__WTOP)

_Static_assert(WEFT_WHEEL_SLOTS == 1 << WEFT__WBITS, "a slot bitmap is one 64-bit word");
_Static_assert(WEFT_WHEEL_LEVELS >= 2 && WEFT_WHEEL_LEVELS <= 10, "levels must fit 64-bit ticks");

static inline uint64_t weft__rotr64(uint64_t x, unsigned r)
{
	return (x >> (r & 63)) | (x << (-r & 63));
}

/* count is read without the shard lock by the stats code; the wheel's owner
 * is its only writer, so a relaxed store of a plain read is race-free. */
static inline void weft__wheel_set_count(weft_wheel_t *w, size_t count)
{
	__atomic_store_n(&w->count, count, __ATOMIC_RELAXED);
}

/* The earliest occupied slot: its level (-1 if the wheel is empty), start in
 * *start. */
static inline int weft__wheel_first(const weft_wheel_t *w, uint64_t *start)
{
	for (int l = 0; l < WEFT_WHEEL_LEVELS; l++) {
		uint64_t occ = w->occupied[l];
		if (!occ)
			continue;
		unsigned sh = (unsigned)(WEFT__WBITS * l);
		uint64_t d = (w->now >> sh) + 1; /* first digit after now's */
		d += (uint64_t)__builtin_ctzll(weft__rotr64(occ, (unsigned)d));
		assert(l == WEFT__WTOP ? d - (w->now >> sh) <= WEFT_WHEEL_SLOTS
				       : d >> WEFT__WBITS == w->now >> (sh + WEFT__WBITS));
		*start = d << sh;
		return l;
	}
	return -1;
}

static inline void weft__wheel_place(weft_wheel_t *w, weft_tnode_t *n)
{
	uint64_t e = n->expiry, now = w->now;
	assert(e > now);
	unsigned l = (unsigned)(63 - __builtin_clzll(e ^ now)) / WEFT__WBITS;
	uint64_t d;
	if (unlikely(l >= WEFT__WTOP)) {
		uint64_t cur = now >> WEFT__WTOP_SHIFT;
		l = WEFT__WTOP;
		d = e >> WEFT__WTOP_SHIFT;
		if (d - cur > WEFT_WHEEL_SLOTS)
			d = cur; /* the furthest slot: cur + 64, same index as cur */
	} else {
		d = e >> (WEFT__WBITS * l);
	}
	unsigned s = (unsigned)d & (WEFT_WHEEL_SLOTS - 1);
	WEFT_LIST_PUSH(w->slots[l][s], n, next, prev);
	n->level = (uint8_t)l;
	n->slot = (uint8_t)s;
	n->linked = true;
	w->occupied[l] |= (uint64_t)1 << s;
}

void weft__wheel_init(weft_wheel_t *w, uint64_t now_tick)
{
	assert(w && now_tick < WEFT_WHEEL_TICK_MAX);
	*w = (weft_wheel_t){.now = now_tick};
}

void weft__wheel_add(weft_wheel_t *w, weft_tnode_t *n, uint64_t expiry)
{
	assert(w && n && !n->linked);
	n->expiry = expiry > w->now ? expiry : w->now + 1;
	weft__wheel_place(w, n);
	weft__wheel_set_count(w, w->count + 1);
}

bool weft__wheel_del(weft_wheel_t *w, weft_tnode_t *n)
{
	assert(w && n);
	if (!n->linked)
		return false;
	WEFT_LIST_UNLINK(w->slots[n->level][n->slot], n, next, prev);
	if (!w->slots[n->level][n->slot])
		w->occupied[n->level] &= ~((uint64_t)1 << n->slot);
	n->linked = false;
	weft__wheel_set_count(w, w->count - 1);
	return true;
}

size_t weft__wheel_advance(weft_wheel_t *w, uint64_t now_tick, weft_tnode_t **expired)
{
	assert(w && expired);
	if (now_tick <= w->now)
		return 0;
	assert(now_tick < WEFT_WHEEL_TICK_MAX);
	weft_tnode_t **tail = expired;
	while (*tail)
		tail = &(*tail)->next;
	size_t k = 0;
	uint64_t start;
	int l;
	while ((l = weft__wheel_first(w, &start)) >= 0 && start <= now_tick) {
		unsigned s = (unsigned)(start >> (WEFT__WBITS * l)) & (WEFT_WHEEL_SLOTS - 1);
		weft_tnode_t *n = w->slots[l][s];
		assert(n && start > w->now);
		w->slots[l][s] = NULL;
		w->occupied[l] &= ~((uint64_t)1 << s);
		w->now = start;
		if (l == 0) {
			/* Everything here is due at start: splice the list as is. */
			*tail = n;
			for (;;) {
				assert(n->expiry == start);
				n->linked = false;
				k++;
				if (!n->next)
					break;
				n = n->next;
			}
			tail = &n->next;
			continue;
		}
		while (n) {
			weft_tnode_t *next = n->next;
			assert(n->expiry >= start);
			assert(l == WEFT__WTOP || n->expiry - start < (uint64_t)1 << (WEFT__WBITS * l));
			if (n->expiry == start) {
				n->linked = false;
				*tail = n;
				tail = &n->next;
				k++;
			} else {
				weft__wheel_place(w, n);
				assert(n->level < l || n->level == WEFT__WTOP);
			}
			n = next;
		}
	}
	*tail = NULL;
	w->now = now_tick;
	assert(k <= w->count);
	weft__wheel_set_count(w, w->count - k);
	return k;
}

uint64_t weft__wheel_next_expiry(const weft_wheel_t *w)
{
	assert(w);
	uint64_t start;
	return weft__wheel_first(w, &start) < 0 ? UINT64_MAX : start;
}
