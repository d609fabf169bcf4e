/*
 * scgi [-l LOG] DIR: one SCGI request on stdin, its response on stdout
 * (the connection, as socket -p gives it), for tests/nginx.bats.
 *   GET or HEAD /files/NAME  the file DIR/NAME (NAME without '/'), 404 if none;
 *                            HEAD sends the same headers and no body
 *   POST                     the request body back, byte for byte
 * Every response has a Content-Length. With -l, one line is appended to
 * LOG per request (one write, O_APPEND), so a test can follow progress.
 * Exits 1 on a malformed request (after a 400 response) or a failed write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADERS_MAX 65536

static int write_all(const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Exactly n bytes from stdin into buf; -1 at a short read. */
static int read_all(char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = read(0, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

static int respond(const char *status, const char *body, size_t len, int with_body)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "Status: %s\r\nContent-Type: application/octet-stream\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 status, len);

	if (write_all(head, (size_t)n) < 0)
		return -1;
	return with_body && len ? write_all(body, len) : 0;
}

/* The value of header name in the NUL-separated pairs, or NULL. */
static const char *header(const char *h, size_t len, const char *name)
{
	const char *end = h + len;

	while (h < end) {
		const char *value = h + strlen(h) + 1;
		if (value >= end)
			return NULL;
		if (strcmp(h, name) == 0)
			return value;
		h = value + strlen(value) + 1;
	}
	return NULL;
}

static int serve_file(const char *dir, const char *uri, int with_body)
{
	const char *name = strncmp(uri, "/files/", 7) == 0 ? uri + 7 : NULL;
	char path[4096], *buf;
	struct stat st;
	int fd, rc;

	if (!name || !*name || strchr(name, '/') ||
	    snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
	    (fd = open(path, O_RDONLY)) < 0)
		return respond("404 Not Found", "", 0, with_body);
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1)) ||
	    read(fd, buf, (size_t)st.st_size) != st.st_size) {
		close(fd);
		return respond("500 Internal Server Error", "", 0, with_body);
	}
	close(fd);
	rc = respond("200 OK", buf, (size_t)st.st_size, with_body);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	const char *log = NULL, *method, *uri, *cl;
	static char headers[HEADERS_MAX];
	char lenbuf[16], comma, *body;
	size_t hlen = 0, blen;
	int c, i = 0;

	while ((c = getopt(argc, argv, "l:")) != -1) {
		if (c != 'l')
			return 2;
		log = optarg;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: scgi [-l log] dir\n");
		return 2;
	}
	/* The netstring's length, up to its ':'. */
	while (i < (int)sizeof lenbuf - 1 && read_all(&lenbuf[i], 1) == 0 && lenbuf[i] != ':')
		i++;
	lenbuf[i] = '\0';
	hlen = (size_t)strtoul(lenbuf, NULL, 10);
	if (!i || hlen == 0 || hlen > sizeof headers || read_all(headers, hlen) < 0 ||
	    read_all(&comma, 1) < 0 || comma != ',' || headers[hlen - 1] != '\0' ||
	    !(cl = header(headers, hlen, "CONTENT_LENGTH")) ||
	    !(method = header(headers, hlen, "REQUEST_METHOD"))) {
		respond("400 Bad Request", "", 0, 1);
		return 1;
	}
	uri = header(headers, hlen, "DOCUMENT_URI");
	blen = (size_t)strtoul(cl, NULL, 10);
	if (!(body = malloc(blen + 1)) || read_all(body, blen) < 0) {
		respond("400 Bad Request", "", 0, 1);
		return 1;
	}
	if (log) {
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
		char line[64];
		int n = snprintf(line, sizeof line, "%s %zu\n", method, blen);

		if (fd >= 0) {
			if (write(fd, line, (size_t)n) < 0) {
				/* progress only */
			}
			close(fd);
		}
	}
	if (strcmp(method, "POST") == 0)
		return respond("200 OK", body, blen, 1) < 0;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return serve_file(argv[optind], uri ? uri : "", method[0] == 'G') < 0;
	return respond("405 Method Not Allowed", "", 0, 1) < 0;
}
