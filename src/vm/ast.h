/* ast.h - the syntax tree the parser (parse.c) builds and the compiler
 * (compile.c) reads.
 *
 * Every node is one struct vm_node, allocated from the parse's arena (freed
 * all at once with the tree). A node has a kind, a position (line and
 * column of its first token, 1-based, the column in bytes), up to three
 * children a, b, c, a list of children (kids, nkids), and a literal value.
 * What each field means is given per kind below; fields not named are NULL
 * or 0. Strings in nodes are the source's decoded bytes (escapes resolved),
 * NUL-terminated, with an explicit length (they may contain NULs).
 */
#ifndef WEFT_VM_AST_H
#define WEFT_VM_AST_H

#include <stddef.h>
#include <stdint.h>

enum vm_node_kind {
	/* ---- literals (expressions and patterns) */
	VM_N_INT = 1, /* i */
	VM_N_FLOAT,   /* f */
	VM_N_STR,     /* s, len */
	VM_N_ATOM,    /* s, len: the name without ':' */
	VM_N_NIL,
	VM_N_TRUE,
	VM_N_FALSE,

	/* ---- expressions */
	VM_N_NAME,    /* s: an identifier */
	VM_N_TUPLE,   /* kids: the elements (0: `()`, 1: `(x,)`) */
	VM_N_LIST,    /* kids: the elements; a: the tail after `|` or NULL */
	VM_N_MAP,     /* kids: VM_N_PAIR nodes; a: the base map of `%{m | ...}` or NULL */
	VM_N_PAIR,    /* a => b (only inside VM_N_MAP, in expressions and patterns) */
	VM_N_BINOP,   /* op: enum vm_binop; a op b */
	VM_N_AND,     /* a and b (short-circuit, yields the deciding operand) */
	VM_N_OR,      /* a or b */
	VM_N_NOT,     /* not a */
	VM_N_NEG,     /* -a (never on a literal: -LITERAL is folded into it) */
	VM_N_BNOT,    /* ~a */
	VM_N_CALL,    /* a(kids...) */
	VM_N_DOT,     /* a.s: an imported module's function, a a VM_N_NAME */
	VM_N_INDEX,   /* a[b] */
	VM_N_FN,      /* closure: kids: the parameter names (VM_N_NAME); a: the body (VM_N_BLOCK) */
	VM_N_BLOCK,   /* kids: the statements; the value is the last one's (nil if none, or if the
		       * last is a let, var, assignment, while or for) */
	VM_N_IF,      /* if a { b } else c: b a VM_N_BLOCK; c a VM_N_BLOCK, a VM_N_IF (else if), or NULL */
	VM_N_WHILE,   /* while a { b } */
	VM_N_FOR,     /* for a in b { c }: a a pattern; b an expression or a VM_N_RANGE */
	VM_N_RANGE,   /* a..b (only as a for's iterable) */
	VM_N_MATCH,   /* match a { kids: VM_N_CLAUSE } */
	VM_N_RECEIVE, /* receive { kids: VM_N_CLAUSE }; a: the after timeout expression or NULL,
		       * b: the after body (a VM_N_BLOCK, or an expression) */
	VM_N_TRY,     /* try a { } catch { kids: VM_N_CLAUSE }: a a VM_N_BLOCK */
	VM_N_CLAUSE,  /* a: pattern; b: guard or NULL; c: body (an expression or a VM_N_BLOCK) */
	VM_N_LOCK,    /* lock s { a }: s the mvar's name, a a VM_N_BLOCK */
	VM_N_BREAK,
	VM_N_CONTINUE,
	VM_N_RETURN, /* return a (a NULL: return nil) */

	/* ---- statements (inside blocks) */
	VM_N_LET,	   /* let a = b: a a pattern */
	VM_N_VAR,	   /* var s = a */
	VM_N_ASSIGN,	   /* s = a (s a var, or an mvar inside its lock) */
	VM_N_INDEX_ASSIGN, /* a[b] = c */

	/* ---- patterns (besides the literals, VM_N_NAME, VM_N_TUPLE, VM_N_LIST, VM_N_MAP) */
	VM_N_WILD, /* _ */
	VM_N_PIN,  /* ^s */
	VM_N_AS,   /* a as s */

	/* ---- top level (the kids of VM_N_MODULE) */
	VM_N_MODULE, /* kids: the declarations, in source order */
	VM_N_FNDEF,  /* fn s(kids: VM_N_NAME params) a: the body (VM_N_BLOCK) */
	VM_N_CONST,  /* let s = a (top level) */
	VM_N_MVAR,   /* mvar s = a */
	VM_N_IMPORT, /* import "s" */
};

enum vm_binop {
	VM_OP_ADD = 1, /* + */
	VM_OP_SUB,     /* - */
	VM_OP_MUL,     /* * */
	VM_OP_DIV,     /* / */
	VM_OP_MOD,     /* % */
	VM_OP_CONCAT,  /* ++ */
	VM_OP_EQ,      /* == */
	VM_OP_NE,      /* != */
	VM_OP_LT,      /* < */
	VM_OP_LE,      /* <= */
	VM_OP_GT,      /* > */
	VM_OP_GE,      /* >= */
	VM_OP_BOR,     /* | */
	VM_OP_BXOR,    /* ^ */
	VM_OP_BAND,    /* & */
	VM_OP_SHL,     /* << */
	VM_OP_SHR,     /* >> */
};

typedef struct vm_node vm_node;
struct vm_node {
	uint8_t kind; /* enum vm_node_kind */
	uint8_t op;   /* VM_N_BINOP: enum vm_binop */
	uint32_t line, col;
	vm_node *a, *b, *c;
	vm_node **kids;
	uint32_t nkids;
	const char *s; /* names, strings, atoms, imports */
	size_t len;    /* the length of s */
	int64_t i;
	double f;
};

/* One diagnostic: "PATH:LINE:COL: error: MSG". */
typedef struct vm_diag {
	uint32_t line, col;
	char msg[160];
} vm_diag;

#define VM_DIAG_MAX 20 /* errors kept per file; parsing stops after that */

/* The result of a parse. The tree (and every string in it) lives in the
 * arena and is freed by vm_parse_free. */
typedef struct vm_parse {
	vm_node *module; /* VM_N_MODULE; NULL only if out of memory */
	vm_diag *diags;	 /* the errors, in source order */
	uint32_t ndiags; /* 0: the tree is complete */
	struct vm_arena *arena;
} vm_parse;

/* Parse src (len bytes, any bytes: invalid UTF-8, NULs and all are errors,
 * never crashes). Returns 0 and fills *out (errors included: check
 * out->ndiags), or -ENOMEM. After an error the parser resynchronises at the
 * next statement or declaration and goes on, so one run reports several
 * errors (at most VM_DIAG_MAX). */
int vm_parse_source(const char *src, size_t len, vm_parse *out);
void vm_parse_free(vm_parse *p);

/* Nodes nest at most this deep (deeper input is an error, not a stack
 * overflow). */
#define VM_PARSE_DEPTH 256

/* The name of a node kind (for tests and debugging output). */
const char *vm_node_name(unsigned kind);

#endif
