/*
 * memory.h — the core's large fixed arrays: mapped on their own, and
 * transparent huge pages asked for.
 *
 * Each array is a mapping of zeroed pages: pages never touched cost
 * nothing, and creating and destroying a core (the tools do it once per
 * run, the tests thousands of times) costs no allocator's zeroing, reuse
 * or, in sanitizer builds, poisoning of hundreds of megabytes.
 *
 * The position table, its slots and the reservation lines are allocated
 * once and probed at random; with 2 MiB pages a probe costs fewer TLB
 * misses, and forking the process (snapshots) copies far fewer page-table
 * entries. A hint only: without THP nothing changes.
 */
#ifndef ATP_CORE_MEMORY_H
#define ATP_CORE_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

/* size bytes of zeroed pages, mapped: NULL when the mapping fails. Free with atp_unmap(p, size). */
static inline void *atp_map_zeroed(size_t size)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline void atp_unmap(void *p, size_t size)
{
	if (p)
		munmap(p, size ? size : 1);
}

static inline void atp_hugepage_hint(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
	const uintptr_t huge = 2u << 20;
	uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + size) & ~(huge - 1);
	if (p && end > start)
		madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
	(void)p;
	(void)size;
#endif
}

/*
 * For an array probed at random (hash slots): huge pages, and every page
 * faulted in now. Any real load touches every page of such an array soon
 * enough, so committing it at creation costs no memory that use would not;
 * it keeps page faults (and, in a virtual machine, the host's faults behind
 * them) off the applying thread, which otherwise pays them one probe at a
 * time through its first hours.
 */
static inline void atp_random_access_memory(void *p, size_t size)
{
	atp_hugepage_hint(p, size);
	if (!p || !size)
		return;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
	/* The kernel faults the range in at once (no trap per page: in a VM each is a costly exit); else by hand. */
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)4095, end = (uintptr_t)p + size;
	if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t i = 0; i < size; i += 4096)
		((volatile uint8_t *)p)[i] = 0;
}

#endif
