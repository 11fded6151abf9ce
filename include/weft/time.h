/* weft/time.h - sleeping and timers.
 *
 * Timers live in a hierarchical timing wheel per worker (1 ms ticks; a timer
 * never fires early and normally fires within about a millisecond of its
 * deadline when a worker is free). */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Park the calling task (or block the calling thread) for ns nanoseconds /
 * until deadline. 0, or -ECANCELED if the task is cancelled first. A
 * stackless task cannot park: 0 if the deadline has passed (ns <= 0),
 * else -EPERM. */
int weft_sleep(weft_time_t ns);
int weft_sleep_until(weft_time_t deadline);

/* A timer calls fn(arg) on a worker at `first` (absolute deadline) and then,
 * if period > 0, every period nanoseconds after (a ticker; missed periods are
 * skipped, not bunched). fn runs outside any task: it must not block (it may
 * spawn, unpark, or stop timers, including its own). */
typedef struct weft_timer weft_timer_t;
int weft_timer_start(weft_timer_t **out, weft_time_t first, weft_time_t period, void (*fn)(void *arg), void *arg);
/* Stop and free the timer. When it returns, fn will not be called again,
 * and is not running - except when called from a timer function (this
 * timer's or another's): then it does not wait for a call running on
 * another worker, and the timer is freed when that call returns. Timers
 * still started when the runtime stops are freed by weft_runtime_stop; do
 * not stop them after it. -EINVAL for NULL (or a second stop from fn). */
int weft_timer_stop(weft_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif
