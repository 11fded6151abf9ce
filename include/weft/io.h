/* weft/io.h - I/O: the netpoller, descriptors and sockets with deadlines,
 * the blocking pool, files, subprocesses and signals.
 *
 * Every blocking call here parks the calling task (never the worker), takes
 * an absolute deadline (WEFT_NEVER for none; -ETIMEDOUT when it passes), and
 * returns -ECANCELED when the task is cancelled. From a plain thread the
 * calls block the thread. Errors are negative errno values (weft_strerror).
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <weft/chan.h>
#include <weft/sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================= netpoller, descriptors, sockets */

/* ============================================= blocking pool, files, processes, signals */

#ifdef __cplusplus
}
#endif
#endif
