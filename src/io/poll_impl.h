/* poll_impl.h - what the netpoller's core (poll.c) shares with its two
 * backends (poll_epoll.c, poll_uring.c). The design comment is in poll.c. */
#ifndef WEFT_POLL_IMPL_H
#define WEFT_POLL_IMPL_H

#include "io_impl.h"

#include <poll.h>
#include <stdalign.h>
#include <sys/epoll.h>

#include "../base/cpu.h"
#include "../base/spin.h"

#ifdef WEFT_HAVE_URING
#include <liburing.h>
#include <pthread.h>
#endif

#define IO_CHUNK_BITS 10
#define IO_CHUNK (1u << IO_CHUNK_BITS)
#define IO_NCHUNKS 4096 /* descriptors up to 4M */
#define IO_EVENTS 256

/* Event data: gen << 32 | fd, the generation cut to 24 bits, and tags in
 * the top byte. */
#define TAG_WAKE (1ull << 63)	/* the eventfd */
#define TAG_IGNORE (1ull << 62) /* io_uring removal requests */
#define TAG_IN (1ull << 57)	/* io_uring poll for POLLIN */
#define TAG_OUT (1ull << 58)	/* io_uring poll for POLLOUT */
#define TAG_MULTI (1ull << 59)	/* io_uring multishot poll of a registered descriptor */
#define ARM_MULTI 0x100u	/* slot->armed: the multishot poll is in flight */
#define GEN_MASK 0xffffffu

#define ERRBITS (POLLERR | POLLHUP)
/* Remembered in slot->seen once reported: hang-ups, errors, urgent data. */
#define SEEN_BITS (POLLRDHUP | POLLPRI | ERRBITS)
/* What epoll polls a descriptor for (and EPOLLET). */
#define POLL_ALL (POLLIN | POLLOUT | POLLRDHUP | POLLPRI)

enum { BACKEND_EPOLL, BACKEND_URING };

struct weft_io {
	int backend;
	int epfd;				    /* epoll backend */
	int efd;				    /* wake eventfd */
	alignas(WEFT_CACHELINE) _Atomic long nwait; /* tasks parked on descriptors (epoll only) */
	alignas(WEFT_CACHELINE) _Atomic(io_slot *) chunks[IO_NCHUNKS];
#ifdef WEFT_HAVE_URING
	alignas(WEFT_CACHELINE) pthread_mutex_t sq_lock;
	_Atomic bool sq_pending; /* queued submissions the poller has not submitted */
	_Atomic bool in_wait;	 /* the poller is (about to be) blocked in the kernel */
	struct io_uring ring;
#endif
	uint64_t efd_buf; /* the poller's read target for the eventfd */
	/* The list of every installed poller (poll.c, "Closing"), under its
	 * lock: */
	struct weft_io *next_io;
	int users;  /* weft_close calls working on this poller from outside it */
	bool dying; /* io_destroy is waiting for users to leave */
	bool listed;
	bool sim; /* a sim runtime's: epoll, local descriptors only (sim.c) */
	struct epoll_event ev[IO_EVENTS];
};

/* ------------------------------------------------------------ core (poll.c) */

/* The slot lock (base/spin.h). Its sections are short, but with io_uring
 * one may wait for sq_lock or submit a full ring: a waiter whose holder is
 * off CPU yields instead of spinning out its time slice. */
static inline void slot_lock(io_slot *s)
{
	weft__spin_lock(&s->lock);
}

static inline void slot_unlock(io_slot *s)
{
	weft__spin_unlock(&s->lock);
}

/* For assert() only: whether s's lock is held (by the caller, where a
 * comment says "under the slot lock"; the spinlock records no owner). */
#define slot_locked(s) (atomic_load_explicit(&(s)->lock, memory_order_relaxed) != 0)

static inline uint64_t slot_data(int fd, uint32_t gen)
{
	return (uint64_t)(gen & GEN_MASK) << 32 | (uint32_t)fd;
}

/* The slot of fd, creating its chunk if `create`. NULL for fd out of range
 * or (create) no memory. */
io_slot *weft__io_slot(weft_io *io, int fd, bool create);
/* The same without creating, inline: the lookup every io call begins with. */
static inline io_slot *weft__io_slot_peek(weft_io *io, int fd)
{
	if ((unsigned)fd >= (unsigned)IO_NCHUNKS * IO_CHUNK) /* a negative fd too */
		return NULL;
	/* acquire: the chunk's zeroed contents are visible before we use it. */
	io_slot *c = atomic_load_explicit(&io->chunks[(unsigned)fd >> IO_CHUNK_BITS], memory_order_acquire);
	return c ? &c[fd & (IO_CHUNK - 1)] : NULL;
}
/* Under the slot lock: record a report of `events` (the generation already
 * checked) and wake the waiters it ends; the bits of `seen` it has are
 * remembered in slot->seen (a poll that ended with an error passes 0).
 * Returns how many waiters were woken. */
int weft__io_report(io_slot *s, uint32_t events, uint32_t seen);
/* The poller saw `events` on (fd, gen): weft__io_report under the lock if
 * the generation is current. */
int weft__io_deliver(weft_io *io, int fd, uint32_t gen, uint32_t events);
/* The poller's read of the wake eventfd. */
void weft__io_drain_wake(weft_io *io);
void weft__io_wake(void *io);
/* One line on stderr, once per process: io_uring is not used, and why. */
void weft__io_log_fallback(const char *why, int err);

/* ------------------------------------------------------------ epoll (poll_epoll.c) */

int weft__epoll_init(weft_io *io);
/* Register fd for good (edge-triggered). */
int weft__epoll_register(weft_io *io, int fd, uint32_t gen);
/* weft_fd_wait: (re)arm a descriptor that may not be (or no longer be) the
 * file the slot registered. */
int weft__epoll_arm_foreign(weft_io *io, int fd, uint32_t gen);
int weft__epoll_poll(weft_io *io, weft_time_t timeout);

/* ------------------------------------------------------------ io_uring (poll_uring.c) */

#ifdef WEFT_HAVE_URING
/* 0, or a negative errno after logging the fallback (io->backend is then
 * still BACKEND_EPOLL). */
int weft__uring_init(weft_io *io);
void weft__uring_exit(weft_io *io);
int weft__uring_poll(weft_io *io, weft_time_t timeout);
/* Under the slot lock, before a wait: arm the polls the wait needs (a
 * registered descriptor: its one multishot poll; a foreign one: a one-shot
 * poll per wanted direction). False if no poll could be queued (the ring is
 * full): the caller must not park. */
bool weft__uring_arm(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events, bool multi);
/* Under the slot lock, after a foreign wait by `self` (unlinked) ended:
 * cancel its one-shot polls that no other waiter wants. */
void weft__uring_disarm(weft_io *io, io_slot *s, int fd, uint32_t gen, uint32_t events);
/* Under the slot lock, in weft_close (the generation already bumped from
 * gen): cancel the slot's polls. True if some were in flight: the closer
 * should wait (s->closer) until the poller has seen them end. */
bool weft__uring_close(weft_io *io, io_slot *s, int fd, uint32_t gen);
#endif

#endif
