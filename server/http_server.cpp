// All of dmarcd's Boost.Beast code lives here: it is expensive to compile,
// and keeping it in one place keeps the rest of the server plain C++.
#include "server/http_server.hpp"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <exception>
#include <optional>
#include <thread>
#include <vector>

#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// How long a connection that was refused (413, 431, 400) is read from and
// drained before it is closed: closing with unread bytes would make the
// kernel send a reset that can destroy the response before the client
// reads it (RFC 9112 section 9.6, "tear-down").
constexpr std::chrono::seconds kLingerTime{5};
constexpr uint64_t kLingerBytes = uint64_t{256} << 20;

// What every connection needs; shared so that a late response (from the
// writer thread, after Stop) never touches a destroyed server.
struct Shared {
  HttpServerOptions options;
  HttpHandler handler;
  HttpErrorFactory errors;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket&& socket, std::shared_ptr<const Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    // Taken now: once the peer has gone, remote_endpoint fails.
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) client_address_ = peer.address().to_string();
  }

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpConnection::ReadHeader, shared_from_this()));
  }

 private:
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(shared_->options.max_header_bytes);
    parser_->body_limit(shared_->options.max_body_bytes);
    stream_.expires_after(shared_->options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpConnection::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    version_ = parser_->get().version();
    // An announced Content-Length above the body limit already failed the
    // header read with body_limit (OnReadError), before any body was read,
    // so a client that asked for 100-continue got its 413 instead.
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
    http::async_write(stream_, *interim,
                      [self = shared_from_this(), interim](beast::error_code ec, std::size_t) {
                        if (ec) return self->Close();
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpConnection::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    stream_.expires_never();

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
    request.client_address = client_address_;
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    started_ = std::chrono::steady_clock::now();
    method_ = request.method;
    target_ = request.target;
    parser_.reset();

    auto self = shared_from_this();
    auto responded = std::make_shared<std::atomic<bool>>(false);
    auto respond = [self, responded](HttpResponse response) {
      responded->store(true);
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    };
    try {
      shared_->handler(request, respond);
    } catch (const std::exception& e) {
      Log("http")->error("method={} target=\"{}\" status=500 exception=\"{}\"", method_, target_,
                         e.what());
      if (!responded->load()) respond(shared_->errors(500, "internal", e.what()));
    }
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) return RefuseTooLarge();
    if (ec == http::error::header_limit) {
      return Refuse(shared_->errors(431, "too_large",
                                    "request header block above " +
                                        std::to_string(shared_->options.max_header_bytes) +
                                        " bytes"));
    }
    return Refuse(
        shared_->errors(400, "invalid_argument", "malformed HTTP request: " + ec.message()));
  }

  void RefuseTooLarge() {
    Refuse(shared_->errors(
        413, "too_large",
        "upload above the limit of " + std::to_string(shared_->options.max_body_bytes) + " bytes"));
  }

  // Answers without reading the rest of the request, then drains and closes.
  void Refuse(HttpResponse response) {
    Log("http")->warn("status={} reason=\"{}\"", response.status, response.body);
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
    for (const auto& [name, value] : response.extra_headers) message->set(name, value);
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
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started_)
                          .count();
      Log("http")->debug("method={} target=\"{}\" status={} bytes={} ms={}", method_, target_,
                         response.status, message->body().size(), ms);
    }
    stream_.expires_after(shared_->options.read_timeout);
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message](beast::error_code ec, std::size_t) {
                        self->OnWrite(ec, message->keep_alive());
                      });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (ec) return Close();
    if (linger_) return Linger();
    if (!keep_alive) return Close();
    head_ = false;
    ReadHeader();
  }

  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    DrainSome();
  }

  void DrainSome() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                              self->drained_ += bytes;
                              if (ec || self->drained_ > kLingerBytes) return self->Close();
                              self->DrainSome();
                            });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<const Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool linger_ = false;
  uint64_t drained_ = 0;
  std::array<char, 16384> scratch_{};
  std::chrono::steady_clock::time_point started_;
  std::string method_;
  std::string target_;
  std::string client_address_;  // the peer's IP address, empty if unknown
};

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(std::shared_ptr<const Shared> shared)
      : shared_(std::move(shared)), ioc_(shared_->options.threads), acceptor_(ioc_) {}

  Result<uint16_t> Start() {
    beast::error_code ec;
    const auto address = net::ip::make_address(shared_->options.address, ec);
    if (ec) {
      return MakeError(ErrorCode::kConfig,
                       "listen address '" + shared_->options.address + "': " + ec.message());
    }
    const tcp::endpoint endpoint(address, shared_->options.port);
    const std::string where =
        shared_->options.address + ":" + std::to_string(shared_->options.port);

    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return MakeError(ErrorCode::kIo, "cannot listen on " + where + ": " + ec.message());

    const uint16_t port = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < shared_->options.threads; ++i) {
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
  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec) {
                               if (ec == net::error::operation_aborted || !acceptor_.is_open())
                                 return;
                               Log("http")->warn("accept error=\"{}\"", ec.message());
                             } else {
                               std::make_shared<HttpConnection>(std::move(socket), shared_)->Run();
                             }
                             Accept();
                           });
  }

  std::shared_ptr<const Shared> shared_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFactory errors)
    : impl_(std::make_unique<Impl>(std::make_shared<const Shared>(
          Shared{std::move(options), std::move(handler), std::move(errors)}))) {}

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
