/* code.h - the register bytecode: the instruction formats, the one table
 * of opcodes with each instruction's exact semantics, and compiled
 * functions (vm_proto) and programs (vm_program).
 *
 * An instruction is 32 bits, byte-aligned fields so that the interpreter
 * decodes with plain byte loads and shifts:
 *
 *   op:8 | A:8 | B:8 | C:8      ABC
 *   op:8 | A:8 | D:16           AD   (D unsigned, or sD: D - 32768)
 *   op:8 | J:24                 J    (sJ: J - 2^23)
 *
 * R[x] is register x of the running frame (stack[base + x]); K[x] the
 * function's constant x; sC is C as a signed byte. Jumps are relative to
 * the instruction after the jump. A "test" instruction (marked T below) is
 * always followed by a JMP: when the test holds, the JMP is skipped; when
 * it fails, the JMP is taken. So every conditional branch is one test and
 * one jump, and the interpreter executes the pair without a second
 * dispatch.
 *
 * Frames: a call's link slot is R[A] (the caller's resume point while the
 * callee runs; its result after), its function R[A+1], its arguments
 * R[A+2 .. A+B+1]; the callee's frame starts at A+2 (its R[0] is the
 * first argument), so its R[-2] is its link and R[-1] its function
 * (interp.c). A frame's size (nregs) is known from its proto, and the
 * stack is grown (moved) only at a function's entry, where the limit is
 * checked once.
 *
 * Reductions: one per call and per backward jump (JMP with sJ < 0, and
 * FORLOOP/NEXT); when a slice's budget is spent the interpreter saves the
 * frame and returns, and the process resumes exactly there.
 */
#ifndef WEFT_VM_CODE_H
#define WEFT_VM_CODE_H

#include <stdint.h>

#include "state.h"

/* X(name, format, semantics) - the one table of truth. */
#define VM_OPCODES(X)                                                                                                  \
	X(MOVE, ABC, "R[A] = R[B]")                                                                                    \
	X(LOADK, AD, "R[A] = K[D]")                                                                                    \
	X(LOADI, AD, "R[A] = sD (a small integer)")                                                                    \
	X(LOADNIL, ABC, "R[A .. A+B] = nil")                                                                           \
	X(LOADBOOL, ABC, "R[A] = B != 0")                                                                              \
	X(GETCAP, ABC, "R[A] = the running closure's captured value B")                                                \
	X(GETGLOBAL, AD, "R[A] = the program's top-level constant D (:undef if read before it is set)")                \
	X(SETGLOBAL, AD, "top-level constant D = R[A] (copied into the literal area)")                                 \
	X(ADD, ABC, "R[A] = R[B] + R[C]")                                                                              \
	X(SUB, ABC, "R[A] = R[B] - R[C]")                                                                              \
	X(MUL, ABC, "R[A] = R[B] * R[C]")                                                                              \
	X(DIV, ABC, "R[A] = R[B] / R[C]")                                                                              \
	X(MOD, ABC, "R[A] = R[B] % R[C]")                                                                              \
	X(ADDI, ABC, "R[A] = R[B] + sC")                                                                               \
	X(CONCAT, ABC, "R[A] = R[B] ++ R[C]")                                                                          \
	X(BAND, ABC, "R[A] = R[B] & R[C]")                                                                             \
	X(BOR, ABC, "R[A] = R[B] | R[C]")                                                                              \
	X(BXOR, ABC, "R[A] = R[B] ^ R[C]")                                                                             \
	X(SHL, ABC, "R[A] = R[B] << R[C]")                                                                             \
	X(SHR, ABC, "R[A] = R[B] >> R[C]")                                                                             \
	X(NEG, ABC, "R[A] = -R[B]")                                                                                    \
	X(BNOT, ABC, "R[A] = ~R[B]")                                                                                   \
	X(NOT, ABC, "R[A] = not R[B] (a boolean)")                                                                     \
	X(EQ, ABC, "R[A] = R[B] == R[C] (structural)")                                                                 \
	X(NE, ABC, "R[A] = R[B] != R[C]")                                                                              \
	X(LT, ABC, "R[A] = R[B] < R[C] (numbers or strings, else :badarg)")                                            \
	X(LE, ABC, "R[A] = R[B] <= R[C]")                                                                              \
	X(JMP, J, "pc += sJ (a reduction if sJ < 0)")                                                                  \
	X(TEST, ABC, "T: R[A] is truthy")                                                                              \
	X(TESTNOT, ABC, "T: R[A] is falsy")                                                                            \
	X(TLT, ABC, "T: R[A] < R[B]")                                                                                  \
	X(TLE, ABC, "T: R[A] <= R[B]")                                                                                 \
	X(TLTI, ABC, "T: R[A] < sB")                                                                                   \
	X(TGTI, ABC, "T: R[A] > sB")                                                                                   \
	X(TLEI, ABC, "T: R[A] <= sB")                                                                                  \
	X(TGEI, ABC, "T: R[A] >= sB")                                                                                  \
	X(TEQ, ABC, "T: R[A] == R[B] (structural)")                                                                    \
	X(TEQK, AD, "T: R[A] == K[D] (structural)")                                                                    \
	X(TTUPLE, ABC, "T: R[A] is a tuple of B elements")                                                             \
	X(TCONS, ABC, "T: R[A] is a non-empty list")                                                                   \
	X(TEMPTY, ABC, "T: R[A] is the empty list")                                                                    \
	X(TMAP, ABC, "T: R[A] is a map")                                                                               \
	X(TMAPGET, ABC, "T: map R[A] has key R[B]; then R[C] = its value")                                             \
	X(FIELD, ABC, "R[A] = element C of tuple R[B] (checked by TTUPLE before)")                                     \
	X(HEAD, ABC, "R[A] = head of the list R[B] (checked by TCONS before)")                                         \
	X(TAIL, ABC, "R[A] = tail of the list R[B] (checked by TCONS before)")                                         \
	X(TUPLE, ABC, "R[A] = (R[B], ..., R[B+C-1])")                                                                  \
	X(LIST, ABC, "R[A] = [R[B], ..., R[B+C-1] | R[B+C]]")                                                          \
	X(MAP, ABC, "R[A] = R[B+2C] (a map) with R[B+2i] => R[B+2i+1] for i < C, in order")                            \
	X(INDEX, ABC, "R[A] = R[B][R[C]]")                                                                             \
	X(SETINDEX, ABC, "R[A][R[B]] = R[C] (an array)")                                                               \
	X(CLOSURE, AD, "R[A] = a closure of child proto D, capturing as the child's captures say")                     \
	X(CALL, ABC, "R[A] = R[A+1](R[A+2 .. A+B+1]) (R[A]: the callee's link, then its result)")                      \
	X(TAILCALL, ABC, "return R[A+1](R[A+2 .. A+B+1]) (the frame is replaced, its link kept)")                      \
	X(CALLK, ABC, "R[A] = K[C](R[A+2 .. A+B+1]), K[C] a known top-level function's proto (R[A+1] gets it)")        \
	X(TAILCALLK, ABC, "return K[C](R[A+2 .. A+B+1])")                                                              \
	X(BUILTIN, ABC, "R[A] = built-in number C (obj.h) (R[A+1 .. A+B]); arity checked here")                        \
	X(RET, ABC, "return R[A]")                                                                                     \
	X(FORPREP, ABC,                                                                                                \
	  "R[A], R[A+1]: the range's start and end, checked integers; then a JMP past the loop if empty")              \
	X(FORLOOP, ABC, "R[A] += 1; if R[A] < R[A+1]: a JMP back follows (taken), else skipped")                       \
	X(ITER, ABC,                                                                                                   \
	  "R[A] = R[B] as a list to walk: a list as is, an array's or a map's elements (maps: (k, v) in key "          \
	  "order); else :badarg")                                                                                      \
	X(NEXT, ABC, "T: R[A] is a non-empty list; then R[B] = its head and R[A] = its tail")                          \
	X(TRY, AD, "push a handler: a raise in this frame or below goes to pc + sD with the value in R[A]")            \
	X(ENDTRY, ABC, "pop the innermost handler")                                                                    \
	X(RAISE, ABC, "raise R[A]")                                                                                    \
	X(BADMATCH, ABC, "raise (:badmatch, R[A]) if B == 0, (:nomatch, R[A]) if B == 1")

enum vm_opcode {
#define VM_OP_ENUM(name, fmt, doc) OP_##name,
	VM_OPCODES(VM_OP_ENUM)
#undef VM_OP_ENUM
		VM_NOPCODES
};

enum vm_format { VM_FMT_ABC, VM_FMT_AD, VM_FMT_J };

/* Encoding and decoding. */
static inline uint32_t vm_abc(unsigned op, unsigned a, unsigned b, unsigned c)
{
	return op | a << 8 | b << 16 | c << 24;
}

static inline uint32_t vm_ad(unsigned op, unsigned a, unsigned d)
{
	return op | a << 8 | d << 16;
}

static inline uint32_t vm_j(unsigned op, int32_t sj)
{
	return op | (uint32_t)(sj + (1 << 23)) << 8;
}

#define VM_OPOF(i) ((i)&0xff)
#define VM_A(i) (((i) >> 8) & 0xff)
#define VM_B(i) (((i) >> 16) & 0xff)
#define VM_C(i) ((i) >> 24)
#define VM_SC(i) ((int32_t)(int8_t)VM_C(i))
#define VM_SB(i) ((int32_t)(int8_t)VM_B(i))
#define VM_D(i) ((i) >> 16)
#define VM_SD(i) ((int32_t)VM_D(i) - 32768)
#define VM_SJ(i) ((int32_t)((i) >> 8) - (1 << 23))
#define VM_SD_MAX 32767
#define VM_SJ_MAX ((1 << 23) - 1)

#define VM_MAX_REGS 250 /* registers per frame */
#define VM_CAP_REG 0x100

/* A compiled function. */
struct vm_proto {
	const char *name; /* "main", "fn@12" for a closure */
	const char *file; /* the source path as given */
	uint32_t line;	  /* where it is defined */
	uint8_t nparams;
	uint8_t nregs; /* its frame's size */
	uint8_t ncaps; /* captured values */
	uint32_t ncode;
	uint32_t *code;
	uint32_t *lines; /* the source line of each instruction */
	vm_value *k;	 /* constants: immediates, literal-area objects, native protos */
	uint32_t nk;
	struct vm_proto **kids; /* closures defined in it */
	uint32_t nkids;
	uint16_t *cap_from; /* per capture: VM_CAP_REG | a register of the enclosing frame, or its capture index */
};

/* Built-in functions are numbered by their index in the table (obj.h). */
const char *vm_opname(unsigned op);
enum vm_format vm_opformat(unsigned op);

#endif
