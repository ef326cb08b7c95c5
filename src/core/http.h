// HttpClient: the one outbound HTTP seam (model providers today; web fetch and payment
// adapters later). Production uses libcurl; tests either point it at a loopback server or
// replace the whole client with a fake.
//
// Errors (the taxonomy callers rely on):
//   Unavailable       the connection failed or was cut (refused, reset, closed before a full
//                     response, DNS failure): transient, may succeed later.
//   DeadlineExceeded  the request did not finish within its timeout: the peer may or may
//                     not have acted on it.
//   InvalidArgument   a malformed URL or an unsupported scheme.
//   FailedPrecondition a TLS certificate problem (a human must look).
// An HTTP error status (4xx/5xx) is NOT an error here: it is returned as a response, and the
// caller decides what it means.
//
// Messages name the method and the URL without its query string (a query may carry a key)
// and never contain header values.
//
// Thread-safety: Send may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace keel {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  HttpHeaders headers;
  std::string body;
  int64_t timeout_ms = 60000;          // whole request, connect included
  int64_t connect_timeout_ms = 10000;  // TCP + TLS handshake
  uint64_t max_response_bytes = 32ull << 20;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // names lowercased, in arrival order
  std::string body;
  // The first header named `name` (case-insensitive), or "" if absent.
  std::string Header(const std::string& name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

// A libcurl client (TLS through OpenSSL, proxies from the usual environment variables).
std::unique_ptr<HttpClient> NewCurlHttpClient();

// "https://host/path?x" -> "https://host/path": what error messages show of a URL.
std::string UrlForMessages(const std::string& url);

}  // namespace keel
