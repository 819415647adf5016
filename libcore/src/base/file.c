/*
 * file.c - whole-file reads (gzip transparently, via zlib), atomic writes, CRC-32.
 */
#include "lepton/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

lp_status lp_file_read(const char *path, uint8_t **data, size_t *len, lp_err *err)
{
    *data = NULL;
    *len = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return lp_err_set(err, errno == ENOENT ? LP_ENOTFOUND : LP_EIO, "%s: cannot open: %s",
                          path, strerror(errno ? errno : EIO));
    gzbuffer(gz, 1 << 17);
    lp_buf b;
    lp_buf_init(&b);
    uint8_t chunk[1 << 16];
    for (;;) {
        int n = gzread(gz, chunk, sizeof chunk);
        if (n < 0) {
            int zerr;
            const char *m = gzerror(gz, &zerr);
            lp_err_set(err, LP_EIO, "%s: read error after %zu bytes: %s", path, b.len, m);
            gzclose(gz);
            lp_buf_free(&b);
            return LP_EIO;
        }
        if (n == 0) {
            /* gzread returns 0 at EOF; a truncated gzip stream shows as Z_BUF_ERROR. */
            int zerr = Z_OK;
            const char *m = gzerror(gz, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END) {
                lp_err_set(err, LP_EFORMAT, "%s: corrupt or truncated gzip after %zu bytes: %s",
                           path, b.len, m);
                gzclose(gz);
                lp_buf_free(&b);
                return LP_EFORMAT;
            }
            break;
        }
        lp_buf_put(&b, chunk, (size_t)n);
        if (b.failed)
            break;
    }
    gzclose(gz);
    if (b.failed) {
        lp_buf_free(&b);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory reading file", path);
    }
    size_t n = 0;
    uint8_t *d = lp_buf_take(&b, &n);
    if (!d) {
        d = calloc(1, 1);
        if (!d)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    }
    *data = d;
    *len = n;
    return LP_OK;
}

lp_status lp_file_write(const char *path, const void *data, size_t len, lp_err *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        lp_err_set(err, LP_EIO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return LP_EIO;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            lp_err_set(err, LP_EIO, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return LP_EIO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        lp_err_set(err, LP_EIO, "%s: flush failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return LP_EIO;
    }
    if (rename(tmp, path) != 0) {
        lp_err_set(err, LP_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return LP_EIO;
    }
    free(tmp);
    return LP_OK;
}

uint32_t lp_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uLong c = crc;
    while (len) {
        uInt chunk = len > 0x40000000u ? 0x40000000u : (uInt)len;
        c = crc32(c, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return (uint32_t)c;
}
