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

/* A timer calls fn(arg) on a worker: once at an absolute deadline, or, with
 * a period, at that deadline and then every period nanoseconds (a ticker:
 * missed periods are skipped, not bunched; a next call that would fall
 * beyond WEFT_NEVER never comes). fn runs outside any task: it must not
 * block. It may spawn, unpark, cancel tasks, make calls that do not wait
 * (try forms, requesting a stop), and create, start, stop or destroy
 * timers, its own included.
 *
 * Lifecycle: create allocates a timer that is not started; start arms it
 * with a schedule (and arms it again with a new one); stop disarms it and
 * keeps it; destroy stops and frees it. A timer belongs to the runtime it
 * was created in (the caller's; from a plain thread the default runtime) and
 * is called on that runtime's workers - or, for the due timers of a worker
 * that has been stuck in one task for 10 ms, on its monitor thread, which
 * counts as the runtime's own (weft_runtime_current() is that runtime,
 * weft_runtime_stop of it is -EDEADLK; weft_worker_index() is -1); all four
 * calls work from its tasks,
 * its timer functions, plain threads and other runtimes' tasks.
 *
 * When the runtime stops: weft_runtime_stop frees the timers that were not
 * destroyed before it returns; their pointers are then dead like a
 * destroyed timer's, and no call may be made on them (there is no error
 * code for a freed object). While its stop is under way - its cancelled
 * tasks and the timer functions still running may clean up - create and
 * start return -ESHUTDOWN (start changes nothing), stop and destroy work
 * as always. A call from outside the runtime (a plain thread, another
 * runtime's task) racing the end of the stop may get -ESHUTDOWN or find
 * the timer freed: make such calls before weft_runtime_stop, or from the
 * runtime's own tasks, which all end before it frees anything. */
typedef struct weft_timer weft_timer_t;
/* Allocate a timer that will call fn(arg); it is not started. *out is
 * owned by the caller (weft_timer_destroy), or by the runtime's stop.
 * -EINVAL for NULL out or fn (*out is set to NULL on every failure);
 * -ESHUTDOWN if there is no runtime or it is stopping; -ENOMEM. */
int weft_timer_create(weft_timer_t **out, void (*fn)(void *arg), void *arg);
/* Arm t: the first call at `first` (absolute; WEFT_NEVER: never due), then
 * every `period` ns if period > 0. If t was started already, the new
 * schedule replaces the old one. Never waits: a call of the old schedule
 * already under way on another worker may still run (stop first to wait
 * for it); no other call of the old schedule comes. -EINVAL for NULL t, a
 * negative period, or a timer destroyed from inside its own function;
 * -ESHUTDOWN while the runtime stops. */
int weft_timer_start(weft_timer_t *t, weft_time_t first, weft_time_t period);
/* Disarm t; it stays allocated and may be started again. When it returns,
 * fn will not be called again (until t is started again) and is not
 * running. Except from a timer function (t's own or another's), which does
 * not wait for another worker: then a call of t already under way there
 * may still run, and from t's own function the caller's call goes on; no
 * other call comes. A start racing the stop from another thread may arm t
 * again. Stopping a timer that is not started (never started, stopped, or
 * a one-shot timer whose call has come) does nothing and returns 0.
 * -EINVAL for NULL or a timer destroyed from inside its own function. */
int weft_timer_stop(weft_timer_t *t);
/* Stop t and free it, with stop's guarantees: from outside the timer
 * functions, when it returns fn is not running and t is gone. From a timer
 * function, if a call of t is under way (the caller's own call, or one on
 * another worker), t is freed when that call returns; calls on t from its
 * own function after destroying it return -EINVAL. -EINVAL for NULL. No
 * other call on t may race it (it frees t). */
int weft_timer_destroy(weft_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif
