/* test_log.c — atp/log.h: the level filter, the sink, repeats suppressed and then counted. */
#include "atp/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static char lines[64][256];
static int levels[64], n_lines;

static void sink(int level, const char *text)
{
	if (n_lines < 64) {
		levels[n_lines] = level;
		snprintf(lines[n_lines++], sizeof(lines[0]), "%s", text);
	}
}

static void reset(int max_level)
{
	n_lines = 0;
	atp_log_setup(sink, max_level);
}

Test(log, levels_filter_and_text_reaches_the_sink)
{
	reset(ATP_LOG_WARN);
	atp_log(ATP_LOG_INFO, "not %s", "written");
	atp_log(ATP_LOG_WARN, "disk %d%% full", 91);
	atp_log(ATP_LOG_ERROR, "fsync failed");
	cr_assert_eq(n_lines, 2, "info is above warn: dropped");
	cr_assert_str_eq(lines[0], "disk 91% full");
	cr_assert_eq(levels[0], ATP_LOG_WARN);
	cr_assert_eq(levels[1], ATP_LOG_ERROR);
	cr_assert_eq(atp_log_level_of("debug"), ATP_LOG_DEBUG);
	cr_assert_eq(atp_log_level_of("loud"), -1);
	cr_assert_str_eq(atp_log_level_name(ATP_LOG_INFO), "info");
}

Test(log, a_message_repeated_within_a_second_is_held_back_after_20_and_then_counted)
{
	reset(ATP_LOG_DEBUG);
	for (int i = 0; i < 50; i++)
		atp_log(ATP_LOG_WARN, "refused seq %d", i);
	cr_assert_eq(n_lines, 20, "the first 20 written, the rest held back");
	cr_assert_str_eq(lines[19], "refused seq 19");
	atp_log(ATP_LOG_INFO, "something else");
	cr_assert_eq(n_lines, 22);
	cr_assert(strstr(lines[20], "30 more"), "the count of what was not written: %s", lines[20]);
	cr_assert_str_eq(lines[21], "something else");
	atp_log_setup(NULL, ATP_LOG_INFO);
}
