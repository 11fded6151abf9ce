/* list.h - intrusive doubly linked lists reached through a head pointer and
 * ended by NULL, the shape of the timer wheel's slots, a runtime's started
 * timers, a descriptor's waiters, a server's connections and the blocking
 * pool's threads. The nodes are the caller's own structs, linked through
 * two of their fields that each call names, so a node joins a list without
 * allocating and leaves it in O(1). The caller does the locking.
 *
 * `head` is an lvalue (the list's first-node pointer) and is evaluated more
 * than once; `n` is evaluated once. Lists that need their tail (weft_waitq_t)
 * or are circular (a channel's waiters) are not of this shape.
 */
#ifndef WEFT_BASE_LIST_H
#define WEFT_BASE_LIST_H

#include <assert.h>
#include <stddef.h>

/* Link n (not on any list) in front of the list. */
#define WEFT_LIST_PUSH(head, n, next, prev)                                                                            \
	do {                                                                                                           \
		__typeof__(n) weft_list_n_ = (n);                                                                      \
		weft_list_n_->next = (head);                                                                           \
		weft_list_n_->prev = NULL;                                                                             \
		if (weft_list_n_->next)                                                                                \
			weft_list_n_->next->prev = weft_list_n_;                                                       \
		(head) = weft_list_n_;                                                                                 \
	} while (0)

/* Unlink n, which is on the list; its links are left NULL. */
#define WEFT_LIST_UNLINK(head, n, next, prev)                                                                          \
	do {                                                                                                           \
		__typeof__(n) weft_list_n_ = (n);                                                                      \
		if (weft_list_n_->prev) {                                                                              \
			weft_list_n_->prev->next = weft_list_n_->next;                                                 \
		} else {                                                                                               \
			assert((head) == weft_list_n_);                                                                \
			(head) = weft_list_n_->next;                                                                   \
		}                                                                                                      \
		if (weft_list_n_->next)                                                                                \
			weft_list_n_->next->prev = weft_list_n_->prev;                                                 \
		weft_list_n_->next = weft_list_n_->prev = NULL;                                                        \
	} while (0)

#endif
