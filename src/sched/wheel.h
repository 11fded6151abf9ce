/* wheel.h - hierarchical timing wheel (one per worker shard; not thread-safe).
 *
 * Time is counted in ticks of 1 ms (weft__tick_of(ns) = ceil(ns / 1e6), so a
 * timer never fires early). The wheel has WEFT_WHEEL_LEVELS levels of 64
 * slots; level L slot covers 64^L ticks. A node due at tick T is placed at the
 * level where (T ^ now) fits, like the Linux and Tokio wheels; advancing the
 * wheel cascades higher-level slots down as time reaches them. Each level has a
 * 64-bit occupancy bitmap, so finding the next expiry is a few bit scans,
 * never a walk over empty slots. Insert and delete are O(1); advancing costs
 * O(expired + cascaded).
 *
 * The caller (timer.c) owns locking: one lock per shard, so there is
 * no global lock on the hot path.
 */
#ifndef WEFT_SCHED_WHEEL_H
#define WEFT_SCHED_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_WHEEL_LEVELS 6 /* 64^6 ms ~ 2.2 years; later deadlines sit in the top level and re-cascade */
#define WEFT_WHEEL_SLOTS 64
#define WEFT_WHEEL_TICK_MAX ((uint64_t)1 << 62) /* bound on now; expiries may be any uint64_t */

typedef struct weft_tnode {
	struct weft_tnode *next, *prev; /* slot list (doubly linked) or expired list (next only) */
	uint64_t expiry;		/* absolute tick */
	uint8_t level, slot;		/* where it sits, valid while linked */
	bool linked;
} weft_tnode_t;

typedef struct weft_wheel {
	uint64_t now;			      /* current tick: everything <= now has been expired */
	uint64_t occupied[WEFT_WHEEL_LEVELS]; /* bit s set <=> slots[l][s] non-empty */
	weft_tnode_t *slots[WEFT_WHEEL_LEVELS][WEFT_WHEEL_SLOTS];
	size_t count; /* linked nodes */
} weft_wheel_t;

/* now_tick, and every later now, must stay below WEFT_WHEEL_TICK_MAX. */
void weft__wheel_init(weft_wheel_t *w, uint64_t now_tick);
/* Insert n due at `expiry` (any tick; one <= now means "due at the next
 * advance" and is stored in n->expiry as now + 1). n must not be linked: a
 * fresh node has linked == false. */
void weft__wheel_add(weft_wheel_t *w, weft_tnode_t *n, uint64_t expiry);
/* Unlink n if linked; returns whether it was. */
bool weft__wheel_del(weft_wheel_t *w, weft_tnode_t *n);
/* Advance to now_tick (a no-op returning 0 if now_tick <= now: time never goes
 * back). Every node with expiry <= now_tick is unlinked and appended to the
 * singly linked list *expired (through ->next, NULL-terminated; *expired must
 * be a valid list, normally NULL), in nondecreasing expiry order. Returns how
 * many were expired. */
size_t weft__wheel_advance(weft_wheel_t *w, uint64_t now_tick, weft_tnode_t **expired);
/* Earliest tick at which some node may be due, always > now: exact when the
 * earliest node is in level 0 (due in now's 64-tick block), otherwise a lower
 * bound (the start of its slot's range) - never later than the true earliest
 * expiry. Advancing to a lower bound cascades the earliest node down a level,
 * so a caller that sleeps until next_expiry wakes early at most once per level
 * (plus once per 2^36 ticks for a deadline beyond the wheel's reach).
 * UINT64_MAX when empty. */
uint64_t weft__wheel_next_expiry(const weft_wheel_t *w);

static inline uint64_t weft__tick_of(int64_t ns)
{
	/* Not (ns + 999999) / 1000000: that overflows for ns near INT64_MAX. */
	return ns <= 0 ? 0 : (uint64_t)ns / 1000000 + ((uint64_t)ns % 1000000 != 0);
}

#endif
