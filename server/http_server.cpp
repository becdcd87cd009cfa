// All of dmarcd's Boost.Beast code lives here: it is expensive to compile,
// and keeping it in one place keeps the rest of the server plain C++.
#include "server/http_server.hpp"

#include <openssl/ssl.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// How long a connection that was refused (413, 431, 400) is read from and
// drained before it is closed: closing with unread bytes would make the
// kernel send a reset that can destroy the response before the client
// reads it (RFC 9112 section 9.6, "tear-down").
constexpr std::chrono::seconds kLingerTime{5};
constexpr uint64_t kLingerBytes = uint64_t{256} << 20;

// How long a TLS connection waits for the peer's close_notify after sending
// its own (RFC 8446 section 6.1) before the socket is closed anyway.
constexpr std::chrono::seconds kTlsShutdownTime{2};

// What a page gets when its handler set no policy: nothing may load or run,
// and no other site may frame it.
constexpr const char* kFallbackPolicy = "default-src 'none'; frame-ancestors 'none'";

// Counts open connections, in total and per peer address. Thread-safe: the
// acceptor takes slots and connections on any io thread give them back.
class ConnectionLimiter {
 public:
  ConnectionLimiter(int max_total, int max_per_client)
      : max_total_(max_total), max_per_client_(max_per_client) {}

  // False when the connection would pass either cap; it holds no slot then.
  bool TryAcquire(const std::string& client) {
    std::lock_guard lock(mutex_);
    if (total_ >= max_total_) return false;
    int& mine = per_client_[client];
    if (mine >= max_per_client_) return false;
    ++mine;
    ++total_;
    return true;
  }

  void Release(const std::string& client) {
    std::lock_guard lock(mutex_);
    --total_;
    auto it = per_client_.find(client);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  }

 private:
  std::mutex mutex_;
  const int max_total_;
  const int max_per_client_;
  int total_ = 0;
  std::unordered_map<std::string, int> per_client_;
};

// One acquired slot, given back when the connection object goes.
class ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<ConnectionLimiter> limiter, std::string client)
      : limiter_(std::move(limiter)), client_(std::move(client)) {}
  ~ConnectionSlot() { limiter_->Release(client_); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ConnectionSlot(ConnectionSlot&&) = delete;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;

  const std::string& Client() const { return client_; }

 private:
  std::shared_ptr<ConnectionLimiter> limiter_;
  std::string client_;
};

// What every connection needs; shared so that a late response (from the
// writer thread, after Stop) never touches a destroyed server.
struct Shared {
  HttpServerOptions options;
  HttpHandler handler;
  HttpErrorFactory errors;
  std::shared_ptr<ConnectionLimiter> limiter;
};

template <class Stream>
class HttpConnection : public std::enable_shared_from_this<HttpConnection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  HttpConnection(Stream&& stream, std::shared_ptr<const Shared> shared,
                 std::unique_ptr<ConnectionSlot> slot)
      : stream_(std::move(stream)), shared_(std::move(shared)), slot_(std::move(slot)) {}

  void Run() {
    net::dispatch(Tcp().get_executor(),
                  beast::bind_front_handler(&HttpConnection::Start, this->shared_from_this()));
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  const HttpServerOptions& Options() const { return shared_->options; }

  // The first request's deadlines run from the moment the connection was
  // accepted: a client that opens a connection and sends nothing (or only
  // half a TLS handshake) is as slow as one that sends a byte a minute.
  void Start() {
    StartDeadlines();
    Tcp().expires_at(header_deadline_);
    if constexpr (kTls) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->CloseSlow("handshake", ec);
                                self->ReadHeader();
                              });
    } else {
      ReadHeader();
    }
  }

  void StartDeadlines() {
    const auto now = Clock::now();
    header_deadline_ = now + Options().header_timeout;
    request_deadline_ = now + Options().request_timeout;
  }

  // A kept-alive connection may wait idle_timeout for the first byte of its
  // next request; that byte starts the request's own deadlines.
  void WaitForRequest() {
    if (buffer_.size() > 0) {
      StartDeadlines();
      return ReadHeader();
    }
    Tcp().expires_after(Options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                       beast::error_code ec, std::size_t bytes) {
      self->buffer_.commit(bytes);
      if (ec) return self->Close();
      self->StartDeadlines();
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(Options().max_header_bytes);
    parser_->body_limit(Options().max_body_bytes);
    Tcp().expires_at(header_deadline_);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpConnection::OnHeader, this->shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec, "header");
    version_ = parser_->get().version();
    // An announced Content-Length above the body limit already failed the
    // header read with body_limit (OnReadError), before any body was read,
    // so a client that asked for 100-continue got its 413 instead.
    Tcp().expires_at(request_deadline_);
    if (WantsContinue()) return WriteContinue();
    ReadBody();
  }

  // RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue"
  // waits for an interim 100 before the body (curl for a second, by
  // default, on bodies above 1 MiB). An HTTP/1.0 request's expectation
  // must be ignored, and a request without a body has nothing to wait for.
  bool WantsContinue() const {
    const auto& message = parser_->get();
    if (message.version() < 11 || parser_->is_done()) return false;
    return beast::iequals(message[http::field::expect], "100-continue");
  }

  void WriteContinue() {
    auto interim =
        std::make_shared<http::response<http::empty_body>>(http::status::continue_, version_);
    http::async_write(
        stream_, *interim,
        [self = this->shared_from_this(), interim](beast::error_code ec, std::size_t) {
          if (ec) return self->Close();
          self->ReadBody();
        });
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpConnection::OnBody, this->shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec, "body");
    Tcp().expires_never();

    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      request.headers[name] = std::string(field.value());
    }
    request.body = std::move(message.body());
    request.client_address = slot_->Client();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    started_ = Clock::now();
    method_ = request.method;
    target_ = request.target;
    parser_.reset();

    auto self = this->shared_from_this();
    auto responded = std::make_shared<std::atomic<bool>>(false);
    auto respond = [self, responded](HttpResponse response) {
      responded->store(true);
      net::post(self->Tcp().get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    };
    try {
      if (Options().gate) {
        if (auto refused = Options().gate(request)) return respond(std::move(*refused));
      }
      shared_->handler(request, respond);
    } catch (const std::exception& e) {
      Log("http")->error("method={} target=\"{}\" status=500 exception=\"{}\"", method_, target_,
                         e.what());
      if (!responded->load()) respond(shared_->errors(500, "internal", e.what()));
    }
  }

  void OnReadError(beast::error_code ec, const char* phase) {
    if (ec == beast::error::timeout) return CloseSlow(phase, ec);
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof ||
        ec == ssl::error::stream_truncated) {
      return Close();
    }
    if (ec == http::error::body_limit) return RefuseTooLarge();
    if (ec == http::error::header_limit) {
      return Refuse(shared_->errors(
          431, "too_large",
          "request header block above " + std::to_string(Options().max_header_bytes) + " bytes"));
    }
    return Refuse(
        shared_->errors(400, "invalid_argument", "malformed HTTP request: " + ec.message()));
  }

  // A deadline passed: no answer (the client is not reading one anyway, or
  // is an attack), only a line in the log.
  void CloseSlow(const char* phase, beast::error_code ec) {
    Log("http")->debug("client={} closed phase={} error=\"{}\"", slot_->Client(), phase,
                       ec.message());
    Tcp().close();
  }

  void RefuseTooLarge() {
    Refuse(shared_->errors(
        413, "too_large",
        "upload above the limit of " + std::to_string(Options().max_body_bytes) + " bytes"));
  }

  // Answers without reading the rest of the request, then drains and closes.
  void Refuse(HttpResponse response) {
    Log("http")->warn("client={} status={} reason=\"{}\"", slot_->Client(), response.status,
                      response.body);
    keep_alive_ = false;
    linger_ = true;
    Write(std::move(response));
  }

  void Write(HttpResponse response) {
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version_);
    message->set(http::field::server, "dmarcd");
    message->set(http::field::content_type, response.content_type);
    // Every response, the server's own refusals too: a browser must never
    // guess a type other than the one declared (an upload echoed in an
    // error message must not run as HTML or script).
    message->set("X-Content-Type-Options", "nosniff");
    bool has_policy = false;
    for (const auto& [name, value] : response.extra_headers) {
      // CORS (Fetch standard): without Access-Control-Allow-* a browser
      // keeps every answer from other sites' scripts; no handler may open it.
      if (name.size() >= 15 && beast::iequals(name.substr(0, 15), "access-control-")) continue;
      has_policy = has_policy || beast::iequals(name, "content-security-policy");
      message->set(name, value);
    }
    if (!has_policy && response.content_type.rfind("text/html", 0) == 0) {
      message->set("Content-Security-Policy", kFallbackPolicy);
    }
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive_);
    message->prepare_payload();
    if (head_) {
      // HEAD: the length of what GET would send, and no body (RFC 9110
      // section 9.3.2).
      const auto length = message->body().size();
      message->body().clear();
      message->content_length(length);
    }

    if (!linger_) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
      Log("http")->debug("method={} target=\"{}\" status={} bytes={} ms={}", method_, target_,
                         response.status, message->body().size(), ms);
    }
    // A client that does not read its answer is as slow as one that does
    // not send its request.
    Tcp().expires_after(Options().request_timeout);
    http::async_write(
        stream_, *message,
        [self = this->shared_from_this(), message](beast::error_code ec, std::size_t) {
          self->OnWrite(ec, message->keep_alive());
        });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (ec) return Close();
    if (linger_) return Linger();
    if (!keep_alive) return Shutdown();
    head_ = false;
    WaitForRequest();
  }

  // Drains the raw socket: under TLS too, as the bytes left unread are the
  // rest of a refused request and nothing of them is wanted.
  void Linger() {
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Tcp().expires_after(kLingerTime);
    DrainSome();
  }

  void DrainSome() {
    Tcp().async_read_some(net::buffer(scratch_), [self = this->shared_from_this()](
                                                     beast::error_code ec, std::size_t bytes) {
      self->drained_ += bytes;
      if (ec || self->drained_ > kLingerBytes) return self->Close();
      self->DrainSome();
    });
  }

  // The end of a connection after a complete answer: under TLS a
  // close_notify first, so the client can tell the end from a truncation
  // (RFC 8446 section 6.1).
  void Shutdown() {
    if constexpr (kTls) {
      Tcp().expires_after(kTlsShutdownTime);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      Close();
    }
  }

  void Close() {
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  Stream stream_;
  std::shared_ptr<const Shared> shared_;
  std::unique_ptr<ConnectionSlot> slot_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Clock::time_point header_deadline_;
  Clock::time_point request_deadline_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool linger_ = false;
  uint64_t drained_ = 0;
  std::array<char, 16384> scratch_{};
  Clock::time_point started_;
  std::string method_;
  std::string target_;
};

// Each connection takes a file descriptor; a soft limit of 1024 (the usual
// default) would make accept fail long before max_connections.
void RaiseOpenFileLimit(int max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + 256;
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted) {
    Log("http")->warn("open file limit={} is below max_connections={}", limit.rlim_cur,
                      max_connections);
  }
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(std::shared_ptr<const Shared> shared)
      : shared_(std::move(shared)), ioc_(shared_->options.threads), acceptor_(ioc_) {}

  Result<uint16_t> Start() {
    const HttpServerOptions& options = shared_->options;
    if (!options.tls_cert.empty()) {
      if (auto loaded = LoadTls(); !loaded) return tl::unexpected(loaded.error());
    }

    beast::error_code ec;
    const auto address = net::ip::make_address(options.address, ec);
    if (ec) {
      return MakeError(ErrorCode::kConfig,
                       "listen address '" + options.address + "': " + ec.message());
    }
    const tcp::endpoint endpoint(address, options.port);
    const std::string where = options.address + ":" + std::to_string(options.port);

    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return MakeError(ErrorCode::kIo, "cannot listen on " + where + ": " + ec.message());

    RaiseOpenFileLimit(options.max_connections);
    const uint16_t port = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < options.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return port;
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    ioc_.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  // TLS 1.2 and later only (RFC 8996 deprecates 1.0 and 1.1); OpenSSL's
  // default ciphers otherwise.
  Result<void> LoadTls() {
    const HttpServerOptions& options = shared_->options;
    tls_.emplace(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    tls_->use_certificate_chain_file(options.tls_cert, ec);
    if (ec) {
      return MakeError(ErrorCode::kConfig,
                       "http.tls_cert '" + options.tls_cert + "': " + ec.message());
    }
    tls_->use_private_key_file(options.tls_key, ssl::context::pem, ec);
    if (ec) {
      return MakeError(ErrorCode::kConfig,
                       "http.tls_key '" + options.tls_key + "': " + ec.message());
    }
    if (SSL_CTX_check_private_key(tls_->native_handle()) != 1) {
      return MakeError(ErrorCode::kConfig, "http.tls_key does not belong to http.tls_cert");
    }
    return {};
  }

  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec) {
                               if (ec == net::error::operation_aborted || !acceptor_.is_open())
                                 return;
                               Log("http")->warn("accept error=\"{}\"", ec.message());
                             } else {
                               Admit(std::move(socket));
                             }
                             Accept();
                           });
  }

  // Above a cap the connection is closed before a byte is read: answering
  // would cost what the cap is there to save.
  void Admit(tcp::socket socket) {
    beast::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    std::string client = ec ? std::string() : peer.address().to_string();
    if (!shared_->limiter->TryAcquire(client)) {
      Log("http")->debug("client={} refused: too many connections", client);
      socket.close(ec);
      return;
    }
    auto slot = std::make_unique<ConnectionSlot>(shared_->limiter, std::move(client));
    if (tls_) {
      std::make_shared<HttpConnection<TlsStream>>(TlsStream(std::move(socket), *tls_), shared_,
                                                  std::move(slot))
          ->Run();
    } else {
      std::make_shared<HttpConnection<PlainStream>>(PlainStream(std::move(socket)), shared_,
                                                    std::move(slot))
          ->Run();
    }
  }

  std::shared_ptr<const Shared> shared_;
  std::optional<ssl::context> tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFactory errors) {
  auto limiter = std::make_shared<ConnectionLimiter>(options.max_connections,
                                                     options.max_connections_per_client);
  impl_ = std::make_unique<Impl>(std::make_shared<const Shared>(
      Shared{std::move(options), std::move(handler), std::move(errors), std::move(limiter)}));
}

HttpServer::~HttpServer() {
  // A destructor must not throw; joining threads can, and there is nobody
  // left to tell but the log.
  try {
    Stop();
  } catch (const std::exception& e) {
    Log("http")->error("stop error=\"{}\"", e.what());
  }
}

Result<uint16_t> HttpServer::Start() { return impl_->Start(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace dmarcd::server
