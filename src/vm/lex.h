/* lex.h - the lexer of the weft language: source bytes to tokens.
 *
 * The lexer decides which newlines end a statement (lex.c explains the
 * rule) and reports its errors (bad characters, invalid UTF-8, NULs,
 * unterminated strings, bad escapes, literals out of range) through the
 * callback given to vm_lex_init, then goes on with a best-effort token, so
 * the parser sees a plausible stream and reports its own errors only.
 */
#ifndef WEFT_VM_LEX_H
#define WEFT_VM_LEX_H

#include <stddef.h>
#include <stdint.h>

struct vm_arena;

enum vm_tok_kind {
	VM_T_EOF = 0,
	VM_T_NEWLINE, /* a newline that ends a statement */
	VM_T_NAME,    /* s, len: the identifier (in the source, not NUL-terminated) */
	VM_T_INT,     /* i (big: the literal was 9223372036854775808, i is 0) */
	VM_T_FLOAT,   /* f */
	VM_T_STR,     /* s, len: the decoded bytes, NUL-terminated, in the arena */
	VM_T_ATOM,    /* s, len: the name without ':' (in the source) */
	/* keywords */
	VM_T_FN,
	VM_T_LET,
	VM_T_VAR,
	VM_T_IF,
	VM_T_ELSE,
	VM_T_WHILE,
	VM_T_FOR,
	VM_T_IN,
	VM_T_BREAK,
	VM_T_CONTINUE,
	VM_T_RETURN,
	VM_T_MATCH,
	VM_T_RECEIVE,
	VM_T_AFTER,
	VM_T_TRY,
	VM_T_CATCH,
	VM_T_MVAR,
	VM_T_LOCK,
	VM_T_AS,
	VM_T_AND,
	VM_T_OR,
	VM_T_NOT,
	VM_T_NIL,
	VM_T_TRUE,
	VM_T_FALSE,
	VM_T_IMPORT,
	/* operators and punctuation */
	VM_T_PLUS,     /* + */
	VM_T_MINUS,    /* - */
	VM_T_STAR,     /* * */
	VM_T_SLASH,    /* / */
	VM_T_PERCENT,  /* % */
	VM_T_CONCAT,   /* ++ */
	VM_T_EQ,       /* == */
	VM_T_NE,       /* != */
	VM_T_LT,       /* < */
	VM_T_LE,       /* <= */
	VM_T_GT,       /* > */
	VM_T_GE,       /* >= */
	VM_T_BAR,      /* | */
	VM_T_CARET,    /* ^ */
	VM_T_AMP,      /* & */
	VM_T_SHL,      /* << */
	VM_T_SHR,      /* >> */
	VM_T_TILDE,    /* ~ */
	VM_T_ASSIGN,   /* = */
	VM_T_ARROW,    /* -> */
	VM_T_FATARROW, /* => */
	VM_T_DOTDOT,   /* .. */
	VM_T_DOT,      /* . */
	VM_T_COMMA,    /* , */
	VM_T_SEMI,     /* ; */
	VM_T_COLON,    /* : */
	VM_T_LPAREN,   /* ( */
	VM_T_RPAREN,   /* ) */
	VM_T_LBRACKET, /* [ */
	VM_T_RBRACKET, /* ] */
	VM_T_LBRACE,   /* { (a block) */
	VM_T_RBRACE,   /* } */
	VM_T_MAPOPEN,  /* %{ */
	VM_T_COUNT
};

typedef struct vm_token {
	uint8_t kind; /* enum vm_tok_kind */
	uint8_t big;  /* VM_T_INT: the literal is 2^63, valid only under a unary minus */
	uint32_t line, col;
	uint32_t depth;	 /* brackets open around the token; an opener and its closer count alike */
	const char *src; /* the token's source text (srclen bytes) */
	size_t srclen;
	const char *s; /* see the kinds */
	size_t len;
	int64_t i;
	double f;
} vm_token;

/* Called for each lexical error, at its position (1-based line, column in
 * bytes); msg is valid only during the call. */
typedef void vm_lex_error_fn(void *ctx, uint32_t line, uint32_t col, const char *msg);

#define VM_LEX_STACK 512 /* brackets whose kind is remembered (deeper ones count as `(`) */

typedef struct vm_lexer {
	const char *src;
	size_t len, pos;
	size_t line_start; /* offset of the current line's first byte */
	uint32_t line;
	uint8_t prev; /* kind of the last token returned (VM_T_NEWLINE at the start) */
	int oom;      /* an allocation failed: the strings decoded since are empty */
	struct vm_arena *arena;
	vm_lex_error_fn *error;
	void *ctx;
	uint32_t depth;			   /* open brackets */
	unsigned char stack[VM_LEX_STACK]; /* their kinds: ( [ % (for %{) { */
} vm_lexer;

/* Prepares lx to read src[0..len) (any bytes; not NUL-terminated). Decoded
 * strings are allocated from arena; errors go to error(ctx, ...). */
void vm_lex_init(vm_lexer *lx, const char *src, size_t len, struct vm_arena *arena, vm_lex_error_fn *error, void *ctx);

/* Reads the next token into *t; at the end, VM_T_EOF (again on each call). */
void vm_lex_next(vm_lexer *lx, vm_token *t);

/* Forgets every open bracket (the parser's recovery at a declaration that
 * starts a line after unbalanced input). */
void vm_lex_reset_brackets(vm_lexer *lx);

/* How a token kind is written in messages: "`)`", "`else`", "newline". */
const char *vm_tok_name(unsigned kind);

#endif
