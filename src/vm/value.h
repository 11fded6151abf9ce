/* value.h - the weft language's values: NaN-boxing, and the heap objects.
 *
 * A value is 64 bits (vm_value). A finite double is stored as itself; the
 * language never produces a NaN or an infinity (those raise :badarith), so
 * every bit pattern whose top 13 bits are all ones (sign, exponent, quiet
 * bit: top 16 bits 0xFFF8..0xFFFF) is free, and the other values live
 * there, a tag in the top 16 bits and a 48-bit payload below:
 *
 *   0xFFF8  small integer: the payload, sign-extended from bit 47
 *           (-2^47 <= i < 2^47). An add is: both tags checked, a 64-bit
 *           add, a check that the result still fits 48 bits, a re-tag.
 *   0xFFF9  constants: nil (0), false (1), true (2), the empty list (3)
 *   0xFFFA  atom: the payload is its index in the VM's atom table
 *   0xFFFB  heap object: the payload is its address (48-bit user space)
 *   0xFFFC  native pointer: a function prototype or a built-in (never
 *           scanned, never freed by the collector)
 *
 * Integers outside the small range (but within int64) are heap objects
 * (VM_OBJ_BIGINT, one int64); every integer operation falls back to a slow
 * path that handles both forms and raises :overflow past int64. Only the
 * small form ever comes out of an operation whose result fits it: each
 * integer has exactly one representation, so == on two small integers is
 * a compare of the words.
 *
 * Why NaN-boxing: floats, integers, atoms, nil and booleans are all
 * immediates (no allocation), as the language's numeric code wants; with
 * low-bit tagging floats would be heap objects. The price is a shift pair
 * per integer operand and 48-bit (not 62-bit) immediate integers. It was
 * not measured against a low-bit-tagged build: the interpreter's fib and
 * binary_trees (bench/vm/) are ahead of LuaJIT's interpreter with it
 * (bench/RESULTS.md), and a JIT can keep unboxed values in registers.
 *
 * Heap objects (obj.h) start with one header word: kind (8 bits), flags
 * (8), size in words of the payload (48). The collector (heap.c) copies an
 * object by its size; it scans the payload words of the kinds marked
 * "values" (every word a vm_value) and skips the "raw" ones.
 */
#ifndef WEFT_VM_VALUE_H
#define WEFT_VM_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint64_t vm_value;

#define VM_TAG_SHIFT 48
#define VM_PAYLOAD ((UINT64_C(1) << VM_TAG_SHIFT) - 1)
#define VM_TAG_INT UINT64_C(0xFFF8)
#define VM_TAG_CONST UINT64_C(0xFFF9)
#define VM_TAG_ATOM UINT64_C(0xFFFA)
#define VM_TAG_OBJ UINT64_C(0xFFFB)
#define VM_TAG_NATIVE UINT64_C(0xFFFC)
#define VM_TAGGED(t, p) (((t) << VM_TAG_SHIFT) | ((uint64_t)(p)&VM_PAYLOAD))

#define VM_NIL VM_TAGGED(VM_TAG_CONST, 0)
#define VM_FALSE VM_TAGGED(VM_TAG_CONST, 1)
#define VM_TRUE VM_TAGGED(VM_TAG_CONST, 2)
#define VM_EMPTY VM_TAGGED(VM_TAG_CONST, 3) /* the empty list [] */

#define VM_SMALL_MIN (-(INT64_C(1) << 47))
#define VM_SMALL_MAX ((INT64_C(1) << 47) - 1)

static inline uint64_t vm_tag(vm_value v)
{
	return v >> VM_TAG_SHIFT;
}

/* A double: anything below the tagged space (finite doubles only). */
static inline bool vm_is_float(vm_value v)
{
	return v < (UINT64_C(0xFFF8) << VM_TAG_SHIFT);
}

static inline double vm_float(vm_value v)
{
	double d;
	memcpy(&d, &v, sizeof d);
	return d;
}

/* The caller has checked that d is finite (vm_float_ok). -0.0 is kept. */
static inline vm_value vm_from_float(double d)
{
	vm_value v;
	memcpy(&v, &d, sizeof v);
	return v;
}

static inline bool vm_float_ok(double d)
{
	return __builtin_isfinite(d);
}

static inline bool vm_is_small(vm_value v)
{
	return vm_tag(v) == VM_TAG_INT;
}

static inline int64_t vm_small(vm_value v)
{
	return (int64_t)(v << 16) >> 16;
}

static inline bool vm_fits_small(int64_t i)
{
	return i >= VM_SMALL_MIN && i <= VM_SMALL_MAX;
}

/* Only for i within the small range (vm_fits_small). */
static inline vm_value vm_from_small(int64_t i)
{
	return VM_TAGGED(VM_TAG_INT, (uint64_t)i);
}

static inline bool vm_is_atom(vm_value v)
{
	return vm_tag(v) == VM_TAG_ATOM;
}

static inline uint32_t vm_atom(vm_value v)
{
	return (uint32_t)(v & VM_PAYLOAD);
}

static inline vm_value vm_from_atom(uint32_t a)
{
	return VM_TAGGED(VM_TAG_ATOM, a);
}

static inline bool vm_truthy(vm_value v)
{
	return v != VM_NIL && v != VM_FALSE;
}

static inline vm_value vm_bool(bool b)
{
	return b ? VM_TRUE : VM_FALSE;
}

/* ------------------------------------------------------------ objects */

enum vm_obj_kind {
	/* raw payloads: never scanned */
	VM_OBJ_BIGINT = 1, /* int64 outside the small range */
	VM_OBJ_STR,	   /* w[0]: length in bytes; then the bytes, NUL-padded */
	VM_OBJ_BIGSTR,	   /* w[0]: struct vm_bigstr * (off-heap, counted) */
	VM_OBJ_PID,	   /* w[0]: weft_pid_t */
	VM_OBJ_REF,	   /* w[0]: weft_ref_t */
	VM_OBJ_FORWARD,	   /* during a collection: w[0] is the new address */
	/* kinds at or above VM_OBJ_SCANNED: every payload word is a value */
	VM_OBJ_SCANNED = 16,
	VM_OBJ_TUPLE = VM_OBJ_SCANNED, /* the elements */
	VM_OBJ_CONS,		       /* head, tail */
	VM_OBJ_MAP,		       /* map.c: a node of the persistent ordered map */
	VM_OBJ_ARRAY,		       /* the elements (mutable) */
	VM_OBJ_CLOSURE,		       /* native proto, then the captured values */
};

/* The header word: kind | flags << 8 | size << 16 (size: payload words). */
typedef uint64_t vm_header;

static inline vm_header vm_hdr(unsigned kind, size_t size)
{
	return (vm_header)kind | (vm_header)size << 16;
}

static inline unsigned vm_hdr_kind(vm_header h)
{
	return (unsigned)(h & 0xff);
}

static inline size_t vm_hdr_size(vm_header h)
{
	return (size_t)(h >> 16);
}

static inline bool vm_is_obj(vm_value v)
{
	return vm_tag(v) == VM_TAG_OBJ;
}

/* An object's header; its payload follows. */
static inline vm_header *vm_obj(vm_value v)
{
	return (vm_header *)(uintptr_t)(v & VM_PAYLOAD);
}

static inline vm_value vm_from_obj(const void *o)
{
	return VM_TAGGED(VM_TAG_OBJ, (uintptr_t)o);
}

static inline vm_value *vm_fields(vm_value v)
{
	return (vm_value *)(vm_obj(v) + 1);
}

static inline bool vm_is_kind(vm_value v, unsigned kind)
{
	return vm_is_obj(v) && vm_hdr_kind(*vm_obj(v)) == kind;
}

static inline bool vm_is_native(vm_value v)
{
	return vm_tag(v) == VM_TAG_NATIVE;
}

static inline void *vm_native(vm_value v)
{
	return (void *)(uintptr_t)(v & VM_PAYLOAD);
}

static inline vm_value vm_from_native(const void *p)
{
	return VM_TAGGED(VM_TAG_NATIVE, (uintptr_t)p);
}

/* Integers of either form. */
static inline bool vm_is_int(vm_value v)
{
	return vm_is_small(v) || vm_is_kind(v, VM_OBJ_BIGINT);
}

static inline int64_t vm_int(vm_value v)
{
	if (vm_is_small(v))
		return vm_small(v);
	int64_t i;
	memcpy(&i, vm_fields(v), sizeof i);
	return i;
}

/* Strings: bytes and length of either form. An off-heap string is shared
 * between heaps (processes, literals) by its count; its bytes never change. */
struct vm_bigstr {
	_Atomic uint64_t refs;
	size_t len;
	char bytes[]; /* NUL-terminated (not counted in len) */
};

/* Strings of at least this many bytes live off-heap. */
#define VM_BIGSTR_MIN 256

static inline bool vm_is_str(vm_value v)
{
	if (!vm_is_obj(v))
		return false;
	unsigned k = vm_hdr_kind(*vm_obj(v));
	return k == VM_OBJ_STR || k == VM_OBJ_BIGSTR;
}

static inline size_t vm_str_len(vm_value v)
{
	vm_value *f = vm_fields(v);
	if (vm_hdr_kind(*vm_obj(v)) == VM_OBJ_STR)
		return (size_t)f[0];
	return ((struct vm_bigstr *)(uintptr_t)f[0])->len;
}

/* The bytes, NUL-terminated (a string may also contain NULs). */
static inline const char *vm_str_bytes(vm_value v)
{
	vm_value *f = vm_fields(v);
	if (vm_hdr_kind(*vm_obj(v)) == VM_OBJ_STR)
		return (const char *)(f + 1);
	return ((struct vm_bigstr *)(uintptr_t)f[0])->bytes;
}

/* Tuples and arrays: element count and elements. */
static inline size_t vm_obj_size(vm_value v)
{
	return vm_hdr_size(*vm_obj(v));
}

static inline bool vm_is_list(vm_value v)
{
	return v == VM_EMPTY || vm_is_kind(v, VM_OBJ_CONS);
}

#endif
