/* test_parse.c - the lexer and the parser of the weft language: every
 * construct of LANGUAGE.md to its tree, the newline rule, precedence,
 * literal folding, patterns, each error with its position and message,
 * recovery, and inputs that must not crash (deep nesting, bad bytes,
 * every prefix of valid programs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/arena.h"
#include "vm/ast.h"
#include "vm/lex.h"
#include "vm/parse.h"

static char out[1 << 16];

/* The errors of a parse as "L:C: msg" lines. */
static const char *errors_of(const vm_parse *p)
{
	static char buf[8192];
	size_t n = 0;
	buf[0] = 0;
	for (uint32_t k = 0; k < p->ndiags; k++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%u:%u: %s\n", p->diags[k].line, p->diags[k].col,
				      p->diags[k].msg);
	return buf;
}

/* The dump of a program that must parse cleanly. */
static const char *dump(const char *src)
{
	vm_parse p;
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	if (p.ndiags)
		fail_msg("unexpected errors in <%s>:\n%s", src, errors_of(&p));
	int n = vm_ast_dump(p.module, out, sizeof out);
	assert_true(n > 0 && (size_t)n < sizeof out);
	vm_parse_free(&p);
	return out;
}

/* The dump of prog, which must start with pre: the rest, without the
 * two closing parentheses of the wrapping. */
static const char *unwrap(const char *prog, const char *pre)
{
	const char *d = dump(prog);
	size_t lp = strlen(pre), n = strlen(d);
	assert_memory_equal(d, pre, lp);
	memmove(out, out + lp, n - lp - 2);
	out[n - lp - 2] = 0;
	return out;
}

/* The dump of one expression (as a top-level constant's value). */
static const char *expr(const char *src)
{
	char prog[4096];
	snprintf(prog, sizeof prog, "let X = %s", src);
	return unwrap(prog, "(module (const X ");
}

/* The dump of a function body. */
static const char *body(const char *src)
{
	char prog[8192];
	snprintf(prog, sizeof prog, "fn f() {\n%s\n}", src);
	return unwrap(prog, "(module (fndef f (params) ");
}

/* The errors of a source of len bytes (which need not parse). */
static const char *errs_n(const char *src, size_t len)
{
	vm_parse p;
	assert_int_equal(vm_parse_source(src, len, &p), 0);
	assert_non_null(p.module);
	const char *e = errors_of(&p);
	vm_ast_dump(p.module, out, sizeof out); /* also for broken trees */
	vm_parse_free(&p);
	return e;
}

static const char *errs(const char *src)
{
	return errs_n(src, strlen(src));
}

#define EXPR(src, want) assert_string_equal(expr(src), want)
#define BODY(src, want) assert_string_equal(body(src), want)
#define ERRS(src, want) assert_string_equal(errs(src), want)

static const char counter_src[] = "# workers report to a counter process, which answers once all have reported\n"
				  "fn counter(total, left, waiter) {\n"
				  "  if left == 0 {\n"
				  "    send(waiter, (:count, total))\n"
				  "  } else {\n"
				  "    receive { (:add, k) -> counter(total + k, left - 1, waiter) }  # a tail call\n"
				  "  }\n"
				  "}\n"
				  "\n"
				  "fn main(args) {\n"
				  "  let workers = if len(args) > 0 { to_int(args[0]) } else { 10 }\n"
				  "  let c = spawn(counter, 0, workers, self())\n"
				  "  for i in 0..workers {\n"
				  "    spawn(fn() { send(c, (:add, i * i)) })\n"
				  "  }\n"
				  "  receive {\n"
				  "    (:count, v) -> print(\"sum of squares:\", v)    # 285 for 10 workers\n"
				  "    after 1000 -> print(\"no answer\")\n"
				  "  }\n"
				  "}\n";

static const char mvar_src[] = "mvar hits = 0\n"
			       "fn worker(n) {\n"
			       "  for _ in 0..n { lock hits { hits = hits + 1 } }\n"
			       "}\n";

static void test_language_examples(void **state)
{
	(void)state;
	assert_string_equal(
		dump(counter_src),
		"(module (fndef counter (params total left waiter) (block (if (== (name left) (int 0)) (block (call "
		"(name send) (name waiter) (tuple (atom count) (name total)))) (block (receive (clause (tuple (atom "
		"add) (name k)) (call (name counter) (+ (name total) (name k)) (- (name left) (int 1)) (name "
		"waiter)))))))) (fndef main (params args) (block (let (name workers) (if (> (call (name len) (name "
		"args)) (int 0)) (block (call (name to_int) (index (name args) (int 0)))) (block (int 10)))) (let "
		"(name c) (call (name spawn) (name counter) (int 0) (name workers) (call (name self)))) (for (name i) "
		"(range (int 0) (name workers)) (block (call (name spawn) (fn (params) (block (call (name send) (name "
		"c) (tuple (atom add) (* (name i) (name i))))))))) (receive (clause (tuple (atom count) (name v)) "
		"(call (name print) (str \"sum of squares:\") (name v))) (after (int 1000) (call (name print) (str "
		"\"no answer\")))))))");
	assert_string_equal(dump(mvar_src), "(module (mvar hits (int 0)) (fndef worker (params n) (block (for _ (range "
					    "(int 0) (name n)) (block (lock hits (block (assign hits (+ (name hits) "
					    "(int 1))))))))))");
	assert_string_equal(dump("fn main() { print(\"hi\") }"),
			    "(module (fndef main (params) (block (call (name print) (str \"hi\")))))");
	/* The snippets of the text. */
	EXPR("if c { a } else if d { b } else { e }",
	     "(if (name c) (block (name a)) (if (name d) (block (name b)) (block (name e))))");
	EXPR("%{m | k => v}", "(map (name m) | (pair (name k) (name v)))");
	EXPR("%{\"k\" => 1, :a => 2}", "(map (pair (str \"k\") (int 1)) (pair (atom a) (int 2)))");
	EXPR("spawn_opt(f, [args], %{:mailbox => n, :link => true})",
	     "(call (name spawn_opt) (name f) (list (name args)) (map (pair (atom mailbox) (name n)) (pair (atom link) "
	     "true)))");
	EXPR("\"a\\tb\\n\\\"q\\\" \\\\ \\u{263A}\"", "(str \"a\\tb\\n\\\"q\\\" \\\\ \\xe2\\x98\\xba\")");
	EXPR("[(1, 2), (1,), [1, 2], %{\"k\" => 1}, \"s\", nil, true, 1.0, 0.1, 1.0e30]",
	     "(list (tuple (int 1) (int 2)) (tuple (int 1)) (list (int 1) (int 2)) (map (pair (str \"k\") (int 1))) "
	     "(str \"s\") nil true (float 1) (float 0.1) (float 1e+30))");
	EXPR("fold(list, acc, fn(acc, x) { acc + x })",
	     "(call (name fold) (name list) (name acc) (fn (params acc x) (block (+ (name acc) (name x)))))");
	BODY("receive { after ms -> e }", "(block (receive (after (name ms) (name e))))");
	BODY("try { raise(v) } catch { (:error, kind, detail) -> kind\n x -> x }",
	     "(block (try (block (call (name raise) (name v))) (clause (tuple (atom error) (name kind) (name detail)) "
	     "(name kind)) (clause (name x) (name x))))");
	assert_string_equal(dump("import \"path.wf\"\nfn main() { path.f(1) }"),
			    "(module (import \"path.wf\") (fndef main (params) (block (call (dot (name path) f) (int "
			    "1)))))");
	BODY("match e { (:ok, x) if x > 0 -> x, _ -> { 0 } }",
	     "(block (match (name e) (clause (tuple (atom ok) (name x)) (guard (> (name x) (int 0))) (name x)) "
	     "(clause _ (block (int 0)))))");
}

static void test_literals(void **state)
{
	(void)state;
	EXPR("42", "(int 42)");
	EXPR("0xff", "(int 255)");
	EXPR("0XFF_FF", "(int 65535)");
	EXPR("1_000_000", "(int 1000000)");
	EXPR("9223372036854775807", "(int 9223372036854775807)");
	EXPR("0x7fffffffffffffff", "(int 9223372036854775807)");
	EXPR("1.5", "(float 1.5)");
	EXPR("2e9", "(float 2000000000)");
	EXPR("1.0e-3", "(float 0.001)");
	EXPR("1E+2", "(float 100)");
	EXPR("1_0.2_5", "(float 10.25)");
	EXPR("1e-400", "(float 0)"); /* underflow is fine */
	EXPR(":ok", "(atom ok)");
	EXPR(":after", "(atom after)");
	EXPR("nil", "nil");
	EXPR("true", "true");
	EXPR("false", "false");
	EXPR("\"\"", "(str \"\")");
	EXPR("\"\\r\\0x\\u{0}\\u{41}\\u{10FFFF}\"", "(str \"\\x0d\\x00x\\x00A\\xf4\\x8f\\xbf\\xbf\")");
	EXPR("\"h\xc3\xa9 \xf0\x9f\x98\x80\"", "(str \"h\\xc3\\xa9 \\xf0\\x9f\\x98\\x80\")");
	/* The decoded string, NUL included, in the node. */
	vm_parse p;
	const char *src = "let X = \"a\\0b\"";
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	const vm_node *s = p.module->kids[0]->a;
	assert_int_equal(s->kind, VM_N_STR);
	assert_int_equal(s->len, 3);
	assert_memory_equal(s->s, "a\0b", 4);
	vm_parse_free(&p);
	/* 1..n is 1 .. n */
	BODY("for i in 1..n { }", "(block (for (name i) (range (int 1) (name n)) (block)))");
	BODY("for i in 1.5..2 { }", "(block (for (name i) (range (float 1.5) (int 2)) (block)))");
}

static void test_negative_literals_fold(void **state)
{
	(void)state;
	EXPR("-5", "(int -5)");
	EXPR("-1.5", "(float -1.5)");
	EXPR("- 5", "(int -5)");
	EXPR("-(5)", "(int -5)");
	EXPR("--5", "(int 5)");
	EXPR("-x", "(neg (name x))");
	EXPR("-9223372036854775808", "(int -9223372036854775808)");
	EXPR("-0x8000000000000000", "(int -9223372036854775808)");
	EXPR("-9223372036854775807 - 1", "(- (int -9223372036854775807) (int 1))");
	EXPR("-2 * 3", "(* (int -2) (int 3))");
	EXPR("2 - -3", "(- (int 2) (int -3))");
	EXPR("-f(1)", "(neg (call (name f) (int 1)))");
	EXPR("-5[0]", "(neg (index (int 5) (int 0)))");
	/* The folded literal sits at the `-`. */
	vm_parse p;
	const char *src = "let X = 1 + -2";
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	const vm_node *n = p.module->kids[0]->a;
	assert_int_equal(n->kind, VM_N_BINOP);
	assert_int_equal(n->line, 1);
	assert_int_equal(n->col, 9);
	assert_int_equal(n->b->kind, VM_N_INT);
	assert_int_equal(n->b->i, -2);
	assert_int_equal(n->b->col, 13);
	vm_parse_free(&p);
	/* 2^63 only directly under a minus. */
	ERRS("let X = 9223372036854775808", "1:9: integer literal too large\n");
	ERRS("let X = -(9223372036854775808)", "1:11: integer literal too large\n");
	ERRS("let X = -9223372036854775808[0]", "1:10: integer literal too large\n");
	ERRS("let X = - -9223372036854775808",
	     "1:9: integer literal too large (the negation of -9223372036854775808)\n");
	ERRS("let X = 9223372036854775809", "1:9: integer literal too large\n");
	ERRS("let X = -9223372036854775809", "1:10: integer literal too large\n");
	ERRS("let X = 0x1_0000_0000_0000_0000", "1:9: integer literal too large\n");
	ERRS("let X = 1e309", "1:9: float literal too large\n");
	ERRS("let X = -1e309", "1:10: float literal too large\n");
}

static void test_precedence_and_associativity(void **state)
{
	(void)state;
	EXPR("a or b and c", "(or (name a) (and (name b) (name c)))");
	EXPR("a or b or c", "(or (or (name a) (name b)) (name c))");
	EXPR("not a and b", "(and (not (name a)) (name b))");
	EXPR("not a == b", "(not (== (name a) (name b)))");
	EXPR("not not a", "(not (not (name a)))");
	EXPR("a == b | c", "(== (name a) (| (name b) (name c)))");
	EXPR("a | b ^ c", "(| (name a) (^ (name b) (name c)))");
	EXPR("a ^ b & c", "(^ (name a) (& (name b) (name c)))");
	EXPR("a & b << c", "(& (name a) (<< (name b) (name c)))");
	EXPR("a >> b ++ c", "(>> (name a) (++ (name b) (name c)))");
	EXPR("a ++ b + c", "(++ (name a) (+ (name b) (name c)))");
	EXPR("a + b * c", "(+ (name a) (* (name b) (name c)))");
	EXPR("a * -b", "(* (name a) (neg (name b)))");
	EXPR("-a[i]", "(neg (index (name a) (name i)))");
	EXPR("~a + b", "(+ (bnot (name a)) (name b))");
	EXPR("a - b - c", "(- (- (name a) (name b)) (name c))");
	EXPR("a / b % c * d", "(* (% (/ (name a) (name b)) (name c)) (name d))");
	EXPR("a ++ b ++ c", "(++ (++ (name a) (name b)) (name c))");
	EXPR("a << b >> c", "(>> (<< (name a) (name b)) (name c))");
	EXPR("(a + b) * c", "(* (+ (name a) (name b)) (name c))");
	EXPR("a != b", "(!= (name a) (name b))");
	EXPR("a <= b or a >= b or a < b or a > b", "(or (or (or (<= (name a) (name b)) (>= (name a) (name b))) (< "
						   "(name a) (name b))) (> (name a) (name b)))");
	EXPR("f(x)(y)[0]", "(index (call (call (name f) (name x)) (name y)) (int 0))");
	EXPR("m.f(1)", "(call (dot (name m) f) (int 1))");
	ERRS("let X = a < b < c", "1:15: comparisons do not chain: `<` cannot follow a comparison (use `and`)\n");
	ERRS("let X = a == b != c", "1:16: comparisons do not chain: `!=` cannot follow a comparison (use `and`)\n");
	EXPR("(a < b) < c", "(< (< (name a) (name b)) (name c))");
}

static void test_tuples_lists_maps(void **state)
{
	(void)state;
	EXPR("()", "(tuple)");
	EXPR("(x,)", "(tuple (name x))");
	EXPR("(x)", "(name x)");
	EXPR("(a, b)", "(tuple (name a) (name b))");
	EXPR("(a, b,)", "(tuple (name a) (name b))");
	EXPR("[]", "(list)");
	EXPR("[1, 2,]", "(list (int 1) (int 2))");
	EXPR("[h | t]", "(list (name h) | (name t))");
	EXPR("[a, b | t]", "(list (name a) (name b) | (name t))");
	EXPR("[a or b | t]", "(list (or (name a) (name b)) | (name t))");
	EXPR("[(a | b)]", "(list (| (name a) (name b)))");
	EXPR("[f(a | b) | t | u]", "(list (call (name f) (| (name a) (name b))) | (| (name t) (name u)))");
	EXPR("%{}", "(map)");
	EXPR("%{1 => 2,}", "(map (pair (int 1) (int 2)))");
	EXPR("%{m | :a => 1, :b => 2}", "(map (name m) | (pair (atom a) (int 1)) (pair (atom b) (int 2)))");
	EXPR("%{(a | b) => 1}", "(map (pair (| (name a) (name b)) (int 1)))");
	EXPR("%{%{} | 1 => 2}", "(map (map) | (pair (int 1) (int 2)))");
	ERRS("let X = [1 2]", "1:12: expected `]` to close the list, found `2`\n");
	ERRS("let X = [a | b c]", "1:16: expected `]` after the tail of the list, found `c`\n");
	ERRS("let X = %{1 2}", "1:13: expected `=>` after the key, found `2`\n");
	ERRS("let X = (1, 2", "1:14: expected `)` to close the tuple, found end of input\n");
	ERRS("let X = (1", "1:11: expected `)` to close the parenthesis, found end of input\n");
}

static void test_newline_rules(void **state)
{
	(void)state;
	/* A binary operator, `,`, `=`, `->`, `=>` at the end of a line. */
	BODY("let x = a +\n b\nx", "(block (let (name x) (+ (name a) (name b))) (name x))");
	BODY("let x =\n 1", "(block (let (name x) (int 1)))");
	BODY("let x = a and\n b or\n c", "(block (let (name x) (or (and (name a) (name b)) (name c))))");
	BODY("match x {\n 1 ->\n 2\n}", "(block (match (name x) (clause (int 1) (int 2))))");
	/* Inside ( [ %{ newlines are ignored. */
	BODY("f(1,\n 2\n , 3)", "(block (call (name f) (int 1) (int 2) (int 3)))");
	BODY("let l = [\n1\n,\n2\n]", "(block (let (name l) (list (int 1) (int 2))))");
	BODY("let m = %{\n1\n=>\n2\n}", "(block (let (name m) (map (pair (int 1) (int 2)))))");
	BODY("let t = (a\n+ b)", "(block (let (name t) (+ (name a) (name b))))");
	/* A line not ending in an operator ends the statement. */
	BODY("a\n- b", "(block (name a) (neg (name b)))");
	BODY("a\n(b)", "(block (name a) (name b))");
	/* A closure in call parentheses: newlines count again in its block. */
	BODY("spawn(fn() {\n  let y = 1\n  send(c, y)\n  y\n}, 2)",
	     "(block (call (name spawn) (fn (params) (block (let (name y) (int 1)) (call (name send) (name c) (name "
	     "y)) "
	     "(name y))) (int 2)))");
	BODY("map([1,\n 2], fn(x) {\n x +\n 1\n x\n })",
	     "(block (call (name map) (list (int 1) (int 2)) (fn (params x) (block (+ (name x) (int 1)) (name x)))))");
	/* `;` ends a statement too; blank and comment lines are nothing. */
	BODY("a; b;; c\n\n# note\n\n d", "(block (name a) (name b) (name c) (name d))");
	/* else on the line of `}`; in parentheses the newline before it is ignored. */
	BODY("if a { 1 } else { 2 }", "(block (if (name a) (block (int 1)) (block (int 2))))");
	BODY("f(if a { 1 }\n else { 2 })", "(block (call (name f) (if (name a) (block (int 1)) (block (int 2)))))");
	ERRS("fn f() {\n  if a { 1 }\n  else { 2 }\n}", "3:3: `else` must follow `}` on the same line\n");
	/* return: no value before a newline or `}`. */
	BODY("return\nx", "(block (return) (name x))");
	BODY("if a { return }", "(block (if (name a) (block (return))))");
	BODY("return x + 1", "(block (return (+ (name x) (int 1))))");
	/* try's catch may go on the next line. */
	BODY("try { a }\ncatch { _ -> b }", "(block (try (block (name a)) (clause _ (name b))))");
	/* Windows line ends. */
	assert_string_equal(dump("fn f() {\r\n  a\r\n  b\r\n}\r\n"),
			    "(module (fndef f (params) (block (name a) (name b))))");
}

static void test_lexer_tokens(void **state)
{
	(void)state;
	struct vm_arena *a = vm_arena_create();
	assert_non_null(a);
	const char *src = "f(x,\n y) {\n a\n b +\n c }\n%{\n} 1..2 x.y ++ -> => :a";
	vm_lexer lx;
	vm_lex_init(&lx, src, strlen(src), a, NULL, NULL);
	static const uint8_t want[] = {
		VM_T_NAME,    VM_T_LPAREN,  VM_T_NAME,	VM_T_COMMA,    VM_T_NAME, VM_T_RPAREN, VM_T_LBRACE,
		VM_T_NAME,    VM_T_NEWLINE, VM_T_NAME,	VM_T_PLUS,     VM_T_NAME, VM_T_RBRACE, VM_T_NEWLINE,
		VM_T_MAPOPEN, VM_T_RBRACE,  VM_T_INT,	VM_T_DOTDOT,   VM_T_INT,  VM_T_NAME,   VM_T_DOT,
		VM_T_NAME,    VM_T_CONCAT,  VM_T_ARROW, VM_T_FATARROW, VM_T_ATOM, VM_T_EOF,
	};
	vm_token t;
	for (size_t k = 0; k < sizeof want; k++) {
		vm_lex_next(&lx, &t);
		if (t.kind != want[k])
			fail_msg("token %zu: %s, wanted %s", k, vm_tok_name(t.kind), vm_tok_name(want[k]));
	}
	vm_lex_next(&lx, &t);
	assert_int_equal(t.kind, VM_T_EOF); /* and again */
	/* Positions: 1-based, columns in bytes. */
	src = "ab \xc3\xa9";
	vm_lex_init(&lx, "x\n\t\"\xc3\xa9\" y", 9, a, NULL, NULL);
	vm_lex_next(&lx, &t);
	assert_int_equal(t.line, 1);
	assert_int_equal(t.col, 1);
	vm_lex_next(&lx, &t);
	assert_int_equal(t.kind, VM_T_NEWLINE);
	assert_int_equal(t.col, 2);
	vm_lex_next(&lx, &t);
	assert_int_equal(t.kind, VM_T_STR);
	assert_int_equal(t.line, 2);
	assert_int_equal(t.col, 2);
	vm_lex_next(&lx, &t);
	assert_int_equal(t.kind, VM_T_NAME);
	assert_int_equal(t.col, 7);
	(void)src;
	vm_arena_destroy(a);
}

static void test_patterns(void **state)
{
	(void)state;
	BODY("let (a, _, ^b, [h | t], [1, -2, 3.5, \"s\", :k, nil, true, false], %{\"k\" => v, ^b => w, -1 => x}) = e",
	     "(block (let (tuple (name a) _ (pin b) (list (name h) | (name t)) (list (int 1) (int -2) (float 3.5) (str "
	     "\"s\") (atom k) nil true false) (map (pair (str \"k\") (name v)) (pair (pin b) (name w)) (pair (int -1) "
	     "(name x)))) (name e)))");
	BODY("let p as whole = e", "(block (let (as (name p) whole) (name e)))");
	BODY("let [a as x, b] as y as z = e", "(block (let (as (as (list (as (name a) x) (name b)) y) z) (name e)))");
	BODY("let () = e", "(block (let (tuple) (name e)))");
	BODY("let (x,) = e", "(block (let (tuple (name x)) (name e)))");
	BODY("let (x) = e", "(block (let (name x) (name e)))");
	BODY("let -9223372036854775808 = e", "(block (let (int -9223372036854775808) (name e)))");
	BODY("for (k, v) in m { }", "(block (for (tuple (name k) (name v)) (name m) (block)))");
	BODY("match x { [] -> 0, [_ | t] -> 1, %{} -> 2 }",
	     "(block (match (name x) (clause (list) (int 0)) (clause (list _ | (name t)) (int 1)) (clause (map) (int "
	     "2))))");
	/* ^name sits at the `^`. */
	vm_parse p;
	const char *src = "fn f() { let ^abc = 1 }";
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	const vm_node *pin = p.module->kids[0]->a->kids[0]->a;
	assert_int_equal(pin->kind, VM_N_PIN);
	assert_int_equal(pin->col, 14);
	assert_string_equal(pin->s, "abc");
	vm_parse_free(&p);
	ERRS("fn f() { let f(x) = 1 }", "1:15: expected `=` after the pattern of `let`, found `(`\n");
	ERRS("fn f() { let a + 1 = 1 }", "1:16: expected `=` after the pattern of `let`, found `+`\n");
	ERRS("fn f() { let %{k => v} = m }",
	     "1:16: expected a literal or `^name` as the key of a map pattern, found `k`\n");
	ERRS("fn f() { let - x = 1 }", "1:16: expected a number after `-` in a pattern, found `x`\n");
	ERRS("fn f() { let x as 1 = 1 }", "1:19: expected a name after `as`, found `1`\n");
	ERRS("fn f() { let ^1 = 1 }", "1:15: expected a name after `^`, found `1`\n");
	ERRS("fn f() { match x { a b -> 1 } }", "1:22: expected `->` after the pattern, found `b`\n");
	ERRS("fn f() { match x { a if b c -> 1 } }", "1:27: expected `->` after the guard, found `c`\n");
}

static void test_control_flow(void **state)
{
	(void)state;
	BODY("if a { b }", "(block (if (name a) (block (name b))))");
	BODY("if a { } else if b { } else if c { } else { d }",
	     "(block (if (name a) (block) (if (name b) (block) (if (name c) (block) (block (name d))))))");
	BODY("while i < n { i = i + 1; break; continue }",
	     "(block (while (< (name i) (name n)) (block (assign i (+ (name i) (int 1))) (break) (continue))))");
	BODY("for x in xs { print(x) }", "(block (for (name x) (name xs) (block (call (name print) (name x)))))");
	BODY("for _ in 0..n + 1 { }", "(block (for _ (range (int 0) (+ (name n) (int 1))) (block)))");
	BODY("match v {\n  1 -> :one, 2 -> :small\n  n if n > 9 -> { let m = n; m }\n  _ -> x = 1\n}",
	     "(block (match (name v) (clause (int 1) (atom one)) (clause (int 2) (atom small)) (clause (name n) (guard "
	     "(> (name n) (int 9))) (block "
	     "(let (name m) (name n)) (name m))) (clause _ (block (assign x (int 1))))))");
	BODY("receive {\n  (:a, x) -> x\n  (:b, y) if y -> { y }\n  after 0 -> nil\n}",
	     "(block (receive (clause (tuple (atom a) (name x)) (name x)) (clause (tuple (atom b) (name y)) (guard "
	     "(name "
	     "y)) (block (name y))) (after (int 0) nil)))");
	BODY("receive { x -> return x }", "(block (receive (clause (name x) (return (name x)))))");
	BODY("receive { }", "(block (receive))");
	BODY("lock hits { hits = hits + 1 }", "(block (lock hits (block (assign hits (+ (name hits) (int 1))))))");
	BODY("let v = lock m { m }", "(block (let (name v) (lock m (block (name m)))))");
	BODY("{ let x = 1; x }", "(block (block (let (name x) (int 1)) (name x)))");
	BODY("let f = fn(a, b,) { a }", "(block (let (name f) (fn (params a b) (block (name a)))))");
	BODY("let w = while a { }", "(block (let (name w) (while (name a) (block))))");
	ERRS("fn f() { receive { after 1 -> 2, x -> x } }", "1:34: `after` must be the last clause of `receive`\n");
	ERRS("fn f() { receive { after 1 -> 2\n after 2 -> 3 } }", "2:2: `receive` takes one `after` clause\n");
	ERRS("fn f() { match x { after 1 -> 2 } }", "1:20: `after` belongs to `receive`\n");
	ERRS("fn f() { try { } }", "1:18: expected `catch` after the block of `try`, found `}`\n");
	ERRS("fn f() { lock { } }", "1:15: expected the name of an mvar after `lock`, found `{`\n");
	ERRS("fn f() { if a b }", "1:15: expected `{` after the condition of `if`, found `b`\n");
	ERRS("fn f() { if a { } else b }", "1:24: expected `{` or `if` after `else`, found `b`\n");
	ERRS("fn f() { while a }", "1:18: expected `{` after the condition of `while`, found `}`\n");
	ERRS("fn f() { for x xs { } }", "1:16: expected `in` after the pattern of `for`, found `xs`\n");
	ERRS("fn f() { let r = 1..2 }", "1:19: a range `a..b` is only allowed as the iterable of `for`\n");
	ERRS("fn f() { for x in (1..2) { } }", "1:21: a range `a..b` is only allowed as the iterable of `for`\n");
	ERRS("fn f() { match x { 1 -> 2 3 } }", "1:27: expected newline or `,` after the clause, found `3`\n");
}

static void test_statements_and_toplevel(void **state)
{
	(void)state;
	BODY("let x = 1\nvar y = 2\ny = 3\na[i] = 4\na[i][j] = 5",
	     "(block (let (name x) (int 1)) (var y (int 2)) (assign y (int 3)) (index-assign (name a) (name i) (int "
	     "4)) "
	     "(index-assign (index (name a) (name i)) (name j) (int 5)))");
	assert_string_equal(dump("let N = 10\nmvar m = %{}\nimport \"lists\"\nfn f(a, b) { }\nfn g() { }"),
			    "(module (const N (int 10)) (mvar m (map)) (import \"lists\") (fndef f (params a b) "
			    "(block)) (fndef g (params) (block)))");
	assert_string_equal(dump(""), "(module)");
	assert_string_equal(dump("\n\n# only a comment"), "(module)");
	assert_string_equal(dump("let A = 1; let B = 2;"), "(module (const A (int 1)) (const B (int 2)))");
	/* The assignment sits at the assigned name. */
	vm_parse p;
	const char *src = "fn f() {\n    total = 1\n}";
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	const vm_node *as = p.module->kids[0]->a->kids[0];
	assert_int_equal(as->kind, VM_N_ASSIGN);
	assert_int_equal(as->line, 2);
	assert_int_equal(as->col, 5);
	assert_string_equal(as->s, "total");
	assert_int_equal(as->len, 5);
	vm_parse_free(&p);
	ERRS("x = 1", "1:1: expected a declaration (`fn`, `let`, `mvar` or `import`), found `x`\n");
	ERRS("print(1)", "1:1: expected a declaration (`fn`, `let`, `mvar` or `import`), found `print`\n");
	ERRS("fn(x) { }", "1:3: expected the function's name after `fn`, found `(`\n");
	ERRS("let (a, b) = 1", "1:5: expected a name after `let` (at top level it binds one name), found `(`\n");
	ERRS("mvar 1 = 1", "1:6: expected a name after `mvar`, found `1`\n");
	ERRS("let A 1", "1:7: expected `=` after the name, found `1`\n");
	ERRS("import lists", "1:8: expected a string after `import`, found `lists`\n");
	ERRS("fn f() { } fn g() { }", "1:12: expected newline or `;` after the declaration, found `fn`\n");
	ERRS("fn f() { a b }", "1:12: expected newline or `;` after the statement, found `b`\n");
	ERRS("fn f() { mvar x = 1 }", "1:10: `mvar` is only allowed at top level\n");
	ERRS("fn f() { import \"x\" }", "1:10: `import` is only allowed at top level\n");
	ERRS("fn f() { fn g() { } }",
	     "1:13: a named function is only allowed at top level (a closure is `fn(params) { ... }`)\n");
	ERRS("fn f() { f(x) = 1 }", "1:10: only a name or an element `a[i]` can be assigned\n");
	ERRS("fn f() { m.x = 1 }", "1:10: only a name or an element `a[i]` can be assigned\n");
	ERRS("fn f() { var (a) = 1 }", "1:14: expected a name after `var`, found `(`\n");
	ERRS("fn f() { var a }", "1:16: expected `=` after the name, found `}`\n");
	ERRS("fn f() { _ }", "1:10: `_` is only allowed in patterns\n");
	ERRS("fn f() { a.b.c }", "1:13: `.` follows a module's name only (`module.function`)\n");
	ERRS("fn f() { m.1 }", "1:12: expected a function name after `.`, found `1`\n");
	ERRS("fn f(1) { }", "1:6: expected a parameter name, found `1`\n");
	ERRS("fn f(a b) { }", "1:8: expected `)` after the parameters, found `b`\n");
	ERRS("fn f() { g(1 2) }", "1:14: expected `)` after the arguments, found `2`\n");
	ERRS("fn f() { a[1 }", "1:14: expected `]` after the index, found `}`\n");
	ERRS("fn f() { a[1 2] }", "1:14: expected `]` after the index, found `2`\n");
	ERRS("fn f() { g(1, }", "1:15: expected an expression, found `}`\n");
	ERRS("fn f() { let x = }", "1:18: expected an expression, found `}`\n");
	ERRS("fn f() {", "1:9: expected `}` to close the block opened at line 1, found end of input\n");
	ERRS("fn f() { let x = 1\n", "2:1: expected `}` to close the block opened at line 1, found end of input\n");
	ERRS("fn f() x", "1:8: expected `{` to open the function's body, found `x`\n");
	ERRS("fn f() { match x { 1 -> 2 ",
	     "1:27: expected `}` to close the clauses opened at line 1, found end of input\n");
	ERRS("fn f() { let s = \"abcdefghijklmnopqrstuvwxyz\" \"x\" }",
	     "1:47: expected newline or `;` after the statement, found a string\n");
	ERRS("fn f() { abcdefghijklmnopqrstuvwxyz0123 x }",
	     "1:41: expected newline or `;` after the statement, found `x`\n");
	ERRS("fn f() { x abcdefghijklmnopqrstuvwxyz0123 }",
	     "1:12: expected newline or `;` after the statement, found `abcdefghijklmnopqrst...`\n");
}

static void test_lexical_errors(void **state)
{
	(void)state;
	ERRS("let S = \"abc", "1:9: unterminated string\n");
	ERRS("let S = \"abc\nlet T = 1", "1:9: unterminated string\n");
	ERRS("let S = \"a\\qb\"", "1:11: invalid escape `\\q` in a string\n");
	ERRS("let S = \"a\\u{D800}\"",
	     "1:11: invalid code point in `\\u{...}` escape (a surrogate or beyond 10FFFF)\n");
	ERRS("let S = \"\\u{110000}\"",
	     "1:10: invalid code point in `\\u{...}` escape (a surrogate or beyond 10FFFF)\n");
	ERRS("let S = \"\\u{}\"", "1:10: malformed escape: `\\u{...}` takes 1 to 6 hex digits\n");
	ERRS("let S = \"\\u{1234567}\"", "1:10: malformed escape: `\\u{...}` takes 1 to 6 hex digits\n");
	ERRS("let S = \"\\u41\"", "1:10: malformed escape: `\\u` takes `{HEX}`\n");
	ERRS("let S = \"\\u{41\"", "1:10: malformed escape: `\\u{...}` takes 1 to 6 hex digits\n");
	ERRS("let X = 12ab", "1:9: malformed number `12ab`\n");
	ERRS("let X = 1_", "1:9: malformed number `1_`\n");
	ERRS("let X = 0x", "1:9: malformed number `0x`\n");
	ERRS("let X = 0xfg", "1:9: malformed number `0xfg`\n");
	ERRS("let X = 1e", "1:9: malformed number `1e`\n");
	ERRS("let X = 1e+", "1:9: malformed number `1e+`\n");
	ERRS("let X = 1 $ 2", "1:11: unexpected character `$`\n");
	ERRS("let X = !a", "1:9: unexpected character `!` (negation is `not`, inequality `!=`)\n");
	ERRS("let X = a\x01", "1:10: unexpected control character 0x01\n");
	ERRS("let X = \xc3\xa9", "1:9: unexpected character U+00E9\n");
	/* Invalid UTF-8: lone continuation, overlong, surrogate, beyond
	 * U+10FFFF, truncated; in code, in strings, in comments. */
	ERRS("let X = \x80", "1:9: invalid UTF-8\n");
	ERRS("let X = \"\xc0\xaf\"", "1:10: invalid UTF-8\n1:11: invalid UTF-8\n");
	ERRS("let X = \"\xed\xa0\x80\"", "1:10: invalid UTF-8\n1:11: invalid UTF-8\n1:12: invalid UTF-8\n");
	ERRS("let X = 1 # \xf4\x90\x80\x80",
	     "1:13: invalid UTF-8\n1:14: invalid UTF-8\n1:15: invalid UTF-8\n1:16: invalid UTF-8\n");
	ERRS("let X = \"\xe2\x98\"", "1:10: invalid UTF-8\n1:11: invalid UTF-8\n");
	ERRS("# \xff\nlet X = 1", "1:3: invalid UTF-8\n");
	/* NUL bytes. */
	assert_string_equal(errs_n("let X = 1\0", 10), "1:10: NUL byte in the source\n");
	assert_string_equal(errs_n("let X = \"a\0b\"", 13), "1:11: NUL byte in the source\n");
	assert_string_equal(errs_n("# a\0b\nlet X = 1", 15), "1:4: NUL byte in the source\n");
	assert_string_equal(errs_n("\0", 1), "1:1: NUL byte in the source\n");
	/* A lexical error silences the parser for the rest of its statement
	 * (its errors there would be echoes), not further. */
	ERRS("fn f() {\n let x = \"a\\q\" +\n}", "2:12: invalid escape `\\q` in a string\n");
	ERRS("fn f() {\n let x = \"a\\q\"\n g(1 2)\n}",
	     "2:12: invalid escape `\\q` in a string\n3:6: expected `)` after the arguments, found `2`\n");
}

static void test_recovery_reports_several_errors(void **state)
{
	(void)state;
	ERRS("fn bad() {\n"
	     "  let x = (1 2)\n"
	     "  a < b < c\n"
	     "  y = \"unterminated\n"
	     "  let z = 99999999999999999999\n"
	     "  f(1 2)\n"
	     "}\n"
	     "fn after_error() { 1 }\n"
	     "x = 5\n"
	     "fn last() { let = }\n",
	     "2:14: expected `)` to close the parenthesis, found `2`\n"
	     "3:9: comparisons do not chain: `<` cannot follow a comparison (use `and`)\n"
	     "4:7: unterminated string\n"
	     "5:11: integer literal too large\n"
	     "6:7: expected `)` after the arguments, found `2`\n"
	     "9:1: expected a declaration (`fn`, `let`, `mvar` or `import`), found `x`\n"
	     "10:17: expected a pattern, found `=`\n");
	/* The good declarations survive. */
	vm_parse p;
	const char *src = "fn a() { 1 2 }\nfn b() { }\nlet = 3\nfn c() { }";
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	assert_int_equal(p.ndiags, 2);
	assert_int_equal(p.module->nkids, 3);
	assert_string_equal(p.module->kids[1]->s, "b");
	assert_string_equal(p.module->kids[2]->s, "c");
	vm_parse_free(&p);
	/* A missing `}` costs one error: the next `fn` in column 1 starts afresh. */
	ERRS("fn a() {\n  let x = 1\n\nfn b() {\n  2\n}\nfn c() { 3 }\n",
	     "4:1: expected `}` to close the block opened at line 1, found `fn`\n");
	ERRS("fn a() {\n  f(1,\n}\nfn b() { }\n", "3:1: expected an expression, found `}`\n");
	ERRS("fn a() {\n  let x = (1,\nfn b() { 1 }\nfn c() { 2 }\n", "3:1: expected an expression, found `fn`\n");
	/* A stray closer inside a block. */
	ERRS("fn a() {\n  x )\n  y ]\n}\nfn b() { } }", "2:5: expected newline or `;` after the statement, found `)`\n"
							"3:5: expected newline or `;` after the statement, found `]`\n"
							"5:12: expected newline or `;` after the declaration, "
							"found `}`\n");
	/* At most VM_DIAG_MAX errors. */
	char big[4000];
	size_t n = 0;
	for (int k = 0; k < 50; k++)
		n += (size_t)snprintf(big + n, sizeof big - n, "x%d = 1\n", k);
	assert_int_equal(vm_parse_source(big, n, &p), 0);
	assert_int_equal(p.ndiags, VM_DIAG_MAX);
	for (uint32_t k = 1; k < p.ndiags; k++)
		assert_true(p.diags[k].line > p.diags[k - 1].line);
	vm_parse_free(&p);
	/* Errors in clauses resynchronise at the next clause. */
	ERRS("fn f() {\n  match x {\n    1 -> (\n    2 -> 3\n    , 4 -> )\n  }\n  g(\n}",
	     "4:7: expected `)` to close the parenthesis, found `->`\n8:1: expected an expression, found `}`\n");
	ERRS("fn f() { match x { 1 -> *, 2 -> 3 4, 5 -> 6, 7 } }",
	     "1:25: expected an expression, found `*`\n1:35: expected newline or `,` after the clause, found "
	     "`4`\n1:48: "
	     "expected `->` after the pattern, found `}`\n");
}

static void deep(const char *open, const char *mid, const char *close, int times, bool ok)
{
	size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
	size_t cap = 16 + (size_t)times * (lo + lc) + lm;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t n = (size_t)snprintf(s, cap, "let X = ");
	for (int k = 0; k < times; k++, n += lo)
		memcpy(s + n, open, lo);
	memcpy(s + n, mid, lm);
	n += lm;
	for (int k = 0; k < times; k++, n += lc)
		memcpy(s + n, close, lc);
	vm_parse p;
	assert_int_equal(vm_parse_source(s, n, &p), 0);
	if (ok) {
		if (p.ndiags)
			fail_msg("%s x %d: %s", open, times, errors_of(&p));
	} else {
		assert_true(p.ndiags >= 1);
		assert_non_null(strstr(p.diags[0].msg, "nesting too deep (more than 256 levels)"));
	}
	vm_ast_dump(p.module, out, sizeof out);
	vm_parse_free(&p);
	free(s);
}

static void test_deep_nesting_is_an_error_not_a_crash(void **state)
{
	(void)state;
	deep("(", "1", ")", 200, true);
	deep("[", "1", "]", 200, true);
	deep("(", "1", ")", 100000, false);
	deep("[", "1", "]", 100000, false);
	deep("%{1 => ", "1", "}", 100000, false);
	deep("{", "1", "}", 100000, false);
	deep("fn() {", "1", "}", 100000, false);
	deep("-", "x", "", 100000, false);
	deep("~", "x", "", 100000, false);
	deep("not ", "x", "", 100000, false);
	deep("f(", "x", ")", 100000, false);
	deep("if a { ", "1", " }", 100000, false);
	deep("1 + ", "1", "", 100000, false); /* a left chain: the depth check */
	deep("", "f", "(1)", 100000, false);
	deep("", "a", "[0]", 100000, false);
	deep("", "1", " + 1", 250, true);
	ERRS("fn f() { let ((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))) = 1 }", "");
	/* A deep pattern. */
	char s[100100];
	size_t n = (size_t)snprintf(s, sizeof s, "fn f() { let ");
	for (int k = 0; k < 50000; k++)
		s[n++] = '[';
	vm_parse p;
	assert_int_equal(vm_parse_source(s, n, &p), 0);
	assert_true(p.ndiags >= 1);
	assert_string_equal(p.diags[0].msg, "nesting too deep (more than 256 levels)");
	vm_parse_free(&p);
	/* An else-if chain. */
	n = (size_t)snprintf(s, sizeof s, "fn f() { ");
	for (int k = 0; k < 5000; k++)
		n += (size_t)snprintf(s + n, sizeof s - n, "if a { } else ");
	n += (size_t)snprintf(s + n, sizeof s - n, "{ } }");
	assert_int_equal(vm_parse_source(s, n, &p), 0);
	assert_true(p.ndiags >= 1);
	vm_parse_free(&p);
}

/* Every prefix of a valid program parses without crashing, and every
 * proper prefix that cuts a construct open reports an error. */
static void prefixes(const char *src)
{
	size_t len = strlen(src);
	for (size_t k = 0; k <= len; k++) {
		char *copy = malloc(k ? k : 1); /* exactly k bytes: ASan sees any overread */
		assert_non_null(copy);
		memcpy(copy, src, k);
		vm_parse p;
		assert_int_equal(vm_parse_source(copy, k, &p), 0);
		assert_non_null(p.module);
		assert_true(p.ndiags <= VM_DIAG_MAX);
		vm_ast_dump(p.module, out, sizeof out);
		vm_parse_free(&p);
		free(copy);
	}
	vm_parse p;
	assert_int_equal(vm_parse_source(src, len, &p), 0);
	assert_int_equal(p.ndiags, 0);
	vm_parse_free(&p);
}

static void test_every_prefix_of_valid_programs(void **state)
{
	(void)state;
	prefixes(counter_src);
	prefixes(mvar_src);
	prefixes("let S = \"a\\tb\\n\\\"q\\\" \\\\ \\u{263A}\"\nlet M = %{m | :k => -1.5e3, [h | t] => (1,)}\n"
		 "fn g(x) { match x { %{\"k\" => ^y} as z if not z -> { try { a[0] = 1 } catch { _ -> 0 } } } }\n");
	/* A cut in the middle of a construct is an error. */
	assert_string_equal(errs("fn main(args) {\n  let c = spawn(counter, 0"),
			    "2:27: expected `)` after the arguments, found end of input\n");
	assert_string_equal(errs("let S = \"a\\u{26"),
			    "1:9: unterminated string\n1:11: malformed escape: `\\u{...}` takes 1 to 6 hex digits\n");
}

static void test_arena_and_dump(void **state)
{
	(void)state;
	struct vm_arena *a = vm_arena_create();
	assert_non_null(a);
	for (size_t k = 0; k < 2000; k++) {
		char *p = vm_arena_alloc(a, k % 37);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 8, 0);
		memset(p, 0xab, k % 37);
	}
	char *big = vm_arena_alloc(a, 1 << 20);
	assert_non_null(big);
	memset(big, 1, 1 << 20);
	char *after = vm_arena_alloc(a, 16); /* still from the current chunk */
	assert_non_null(after);
	char *d = vm_arena_strdup(a, "a\0b", 3);
	assert_memory_equal(d, "a\0b\0", 4);
	assert_string_equal(vm_arena_strdup(a, NULL, 0), "");
	assert_null(vm_arena_strdup(a, NULL, 1));
	assert_null(vm_arena_alloc(NULL, 8));
	assert_null(vm_arena_alloc(a, SIZE_MAX));
	vm_arena_destroy(a);
	vm_arena_destroy(NULL);

	assert_int_equal(vm_parse_source(NULL, 1, &(vm_parse){0}), -EINVAL);
	assert_int_equal(vm_parse_source("", 0, NULL), -EINVAL);
	vm_parse p;
	assert_int_equal(vm_parse_source(NULL, 0, &p), 0);
	assert_int_equal(p.module->nkids, 0);
	/* The dump: cut short and NUL-terminated, with the full length. */
	const char *src = "let X = 123456";
	vm_parse_free(&p);
	assert_int_equal(vm_parse_source(src, strlen(src), &p), 0);
	char small[10];
	int n = vm_ast_dump(p.module, small, sizeof small);
	assert_int_equal(n, (int)strlen("(module (const X (int 123456)))"));
	assert_string_equal(small, "(module (");
	assert_int_equal(vm_ast_dump(p.module, NULL, 0), n);
	assert_int_equal(vm_ast_dump(NULL, small, sizeof small), 1);
	assert_string_equal(small, "?");
	vm_parse_free(&p);
	vm_parse_free(&p); /* twice is harmless */
	vm_parse_free(NULL);
	assert_string_equal(vm_node_name(VM_N_CLAUSE), "clause");
	assert_string_equal(vm_node_name(VM_N_INDEX_ASSIGN), "index-assign");
	assert_string_equal(vm_node_name(0), "?");
	assert_string_equal(vm_node_name(1000), "?");
	assert_string_equal(vm_tok_name(VM_T_MAPOPEN), "`%{`");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_language_examples),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_negative_literals_fold),
		cmocka_unit_test(test_precedence_and_associativity),
		cmocka_unit_test(test_tuples_lists_maps),
		cmocka_unit_test(test_newline_rules),
		cmocka_unit_test(test_lexer_tokens),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_control_flow),
		cmocka_unit_test(test_statements_and_toplevel),
		cmocka_unit_test(test_lexical_errors),
		cmocka_unit_test(test_recovery_reports_several_errors),
		cmocka_unit_test(test_deep_nesting_is_an_error_not_a_crash),
		cmocka_unit_test(test_every_prefix_of_valid_programs),
		cmocka_unit_test(test_arena_and_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
