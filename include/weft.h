/* weft.h - the whole public API of libweft. */
#ifndef WEFT_H
#define WEFT_H

#include <weft/base.h>
#include <weft/sched.h>
#include <weft/time.h>
#include <weft/chan.h>
#include <weft/sync.h>
#include <weft/io.h>
#include <weft/exec.h>
#include <weft/executors.h>
#include <weft/actor.h>
#include <weft/vm.h>

#endif
