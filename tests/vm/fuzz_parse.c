/* fuzz_parse.c - the libFuzzer target of the parser: any bytes are parsed,
 * printed and freed, and what the parser promises is checked (the
 * diagnostics sorted, in range and bounded; a clean parse has a tree whose
 * printing is complete). Built with -DWEFT_FUZZ=ON (clang only); run as
 * build/fuzz/fuzz_parse tests/vm/corpus/parse. */
#include "vm/ast.h"
#include "vm/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vm_parse p;
	if (vm_parse_source((const char *)data, size, &p) != 0)
		return 0;
	if (!p.module || p.module->kind != VM_N_MODULE || p.ndiags > VM_DIAG_MAX)
		abort();
	for (uint32_t k = 0; k < p.ndiags; k++) {
		const vm_diag *d = &p.diags[k];
		if (d->line < 1 || d->col < 1 || !d->msg[0] || !memchr(d->msg, 0, sizeof d->msg))
			abort();
		if (k > 0 && (d->line < d[-1].line || (d->line == d[-1].line && d->col <= d[-1].col)))
			abort();
	}
	static char buf[1 << 16];
	int n = vm_ast_dump(p.module, buf, sizeof buf);
	if (n < 0 || (p.ndiags == 0 && (size_t)n < sizeof buf && strstr(buf, "...") && !memchr(data, '.', size)))
		abort(); /* a clean tree is never cut for depth */
	vm_parse_free(&p);
	return 0;
}
