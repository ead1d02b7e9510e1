/* The front end's set of slots in use (src/net/live.h) against a plain array of flags, through random adds and removes. */
#include "../../src/net/live.h"

#include <criterion/criterion.h>

#define CAP 257

Test(live, random_adds_and_removes_match_a_table_of_flags)
{
	live_set l;
	bool used[CAP] = { 0 };
	uint32_t n_used = 0, x = 12345;
	cr_assert_eq(live_init(&l, CAP), 0);
	for (int step = 0; step < 100000; step++) {
		x = x * 1103515245u + 12345u;
		uint32_t id = (x >> 8) % CAP;
		if (used[id]) {
			live_del(&l, id);
			n_used--;
		} else {
			live_add(&l, id);
			n_used++;
		}
		used[id] = !used[id];
		cr_assert_eq(l.n, n_used);
		if (step % 997 == 0) {  /* every slot in use listed once, no other */
			bool seen[CAP] = { 0 };
			const uint32_t *ids;
			uint32_t n = live_copy(&l, &ids);
			cr_assert_eq(n, n_used);
			for (uint32_t k = 0; k < n; k++) {
				cr_assert(ids[k] < CAP && used[ids[k]] && !seen[ids[k]], "slot %u at %u", ids[k], k);
				seen[ids[k]] = true;
			}
		}
	}
	live_free(&l);
}

Test(live, a_copy_stays_as_it_was_while_the_set_changes)
{
	live_set l;
	cr_assert_eq(live_init(&l, 8), 0);
	for (uint32_t i = 0; i < 8; i++)
		live_add(&l, i);
	const uint32_t *ids;
	uint32_t n = live_copy(&l, &ids);
	for (uint32_t k = 0; k < n; k++)
		live_del(&l, ids[k]);  /* a pass freeing every slot it visits visits each once */
	cr_assert_eq(l.n, 0);
	live_add(&l, 3);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.ids[0], 3);
	live_free(&l);
}
