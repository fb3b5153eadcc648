/* A tiny native custom runtime: a Runtime API client over plain sockets,
 * one connection per request. Replies {"native":true,"event":<event>}. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char host[256], port[16];

static int dial(void) {
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

/* Sends a request and reads the reply (headers + Content-Length bytes, or up to EOF). */
static char *exchange(const char *method, const char *path, const char *body, size_t body_len,
                      size_t *reply_len) {
  int fd = dial();
  if (fd < 0) exit(10);
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                   method, path, host, port, body_len);
  if (write(fd, head, (size_t)n) != n) exit(11);
  if (body_len && write(fd, body, body_len) != (ssize_t)body_len) exit(12);
  size_t cap = 1 << 16, len = 0, want = (size_t)-1;
  char *buf = malloc(cap + 1);
  while (len < want) {
    if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    ssize_t r = read(fd, buf + len, cap - len);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (want == (size_t)-1 && end) {
      /* Content-Length bounds the reply even if the server keeps the connection. */
      for (char *h = buf; h < end; h = strstr(h, "\r\n") + 2)
        if (strncasecmp(h, "Content-Length:", 15) == 0)
          want = (size_t)(end + 4 - buf) + strtoull(h + 15, NULL, 10);
    }
  }
  close(fd);
  buf[len] = 0;
  *reply_len = len;
  return buf;
}

int main(void) {
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api) return 2;
  const char *colon = strrchr(api, ':');
  snprintf(host, sizeof host, "%.*s", (int)(colon - api), api);
  snprintf(port, sizeof port, "%s", colon + 1);
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("native runtime started\n");
  for (;;) {
    size_t len;
    char *reply = exchange("GET", "/2018-06-01/runtime/invocation/next", "", 0, &len);
    char *body = strstr(reply, "\r\n\r\n");
    if (!body) return 3;
    *body = 0;
    body += 4;
    char id[128] = "";
    for (char *line = strtok(reply, "\r\n"); line; line = strtok(NULL, "\r\n"))
      if (strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30) == 0)
        sscanf(line + 30, " %127s", id);
    if (!id[0]) return 4;
    size_t blen = len - (size_t)(body - reply);
    char *out = malloc(blen + 64);
    int olen = sprintf(out, "{\"native\":true,\"event\":%.*s}", (int)blen, body);
    char path[256];
    snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", id);
    printf("native handled %s\n", id);
    free(exchange("POST", path, out, (size_t)olen, &len));
    free(out);
    free(reply);
  }
}
