/*
 * report_files — `perfagent report FILE...` (main_cli.c): every file's
 * stream decoded and its reports written into out, by writer processes when
 * there is more than one file (report_jobs.h, PERFAGENT_REPORT_JOBS); each
 * file's lines printed in the files' order.  Returns 0 when every stream
 * decoded to its end and its reports were written, 1 otherwise.
 */
#ifndef PA_REPORT_FILES_H
#define PA_REPORT_FILES_H

#include "outdir.h"

int report_files(outdir_t *out, char *const *paths, int n, const char *sysroot, int per_thread);

#endif
