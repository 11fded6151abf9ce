/* parse.h - the syntax tree as text, for tests and debugging (the parser
 * itself is declared in ast.h). */
#ifndef WEFT_VM_PARSE_H
#define WEFT_VM_PARSE_H

#include <stddef.h>

#include "ast.h"

/* Writes n as a compact S-expression, e.g.
 *   (module (fndef main (params args) (block (call (name print) (str "hi")))))
 * into buf (cap bytes, always NUL-terminated when cap > 0, cut short if it
 * does not fit) and returns the length of the whole text (as snprintf
 * does; so a return >= cap means it was cut). The forms: literals (int 42),
 * (float 1.5), (str "a\n") (bytes outside printable ASCII as \xHH),
 * (atom ok), nil, true, false; (name x); _ (wildcard); operators by their
 * symbol (+ a b); every other node (KIND children...) with KIND its
 * vm_node_name, names and optional parts inline: (list a b | t),
 * (map base | (pair k v)), (clause p (guard g) body), (receive clauses...
 * (after ms body)), (if c then else), (return), (fn (params a b) body).
 * Nodes nested deeper than VM_PARSE_DEPTH + 16 are written `...`. n NULL
 * is written `?`. */
int vm_ast_dump(const vm_node *n, char *buf, size_t cap);

#endif
