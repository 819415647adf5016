/*
 * io.c - the shared reading options of the sub-commands (see io.h).
 */
#include "io.h"

#include <string.h>

lp_status cli_read_frame(const char *path, const cli_read *r, lp_frame **out, lp_err *err)
{
    lp_csv_opts o = lp_csv_opts_default();
    if (r->delim) {
        if (!strcmp(r->delim, "tab") || !strcmp(r->delim, "\\t") || !strcmp(r->delim, "\t"))
            o.delim = '\t';
        else if (strlen(r->delim) == 1)
            o.delim = r->delim[0];
        else
            return lp_err_set(err, LP_EINVAL, "--delim '%s': expected one character or 'tab'",
                              r->delim);
    }
    o.types = r->types;
    o.missing = r->missing;
    o.header = !r->no_header;
    lp_status st = lp_csv_opts_check(&o, err);
    if (st)
        return st;
    return lp_frame_read(path, &o, out, err);
}
