#include "http/server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <latch>
#include <optional>
#include <utility>

#include "core/cpus.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "http/poll_window.hpp"

namespace lambent::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {
thread_local int t_shard_index = -1;
thread_local asio::io_context* t_shard_context = nullptr;

// A connection's read buffer. Beast sizes each read by the buffer's free capacity (at least
// 512 bytes), and its parser moves body bytes out as they arrive, so a flat_buffer stays a few
// hundred bytes large and a 5-MB body took ~10,000 receives and as many trips through the event
// loop. A request whose head declares a large body sets `large_body`: reads are then 64 KiB
// (Beast's cap), found by Beast through this read_size_helper.
class ReadBuffer : public beast::flat_buffer {
 public:
  static constexpr std::size_t kLargeBody = 16 * 1024;
  bool large_body = false;
  // Between requests: the capacity a large body grew is given back, so an idle connection
  // holds no more than a small request needs.
  void next_request() {
    large_body = false;
    if (capacity() > 2 * kLargeBody) shrink_to_fit();
  }
};

std::size_t read_size_helper(ReadBuffer& b, std::size_t max_size) {
  const std::size_t room = b.max_size() - b.size();
  const std::size_t free = b.capacity() - b.size();
  return std::min(b.large_body ? max_size : std::max<std::size_t>(512, free), room);
}

// Beast's fields store lengths in 16 bits and throw std::length_error on a
// longer value, which would unwind out of the shard's event loop. Runtimes
// send X-Ray error causes of up to 1 MiB; such values are dropped (Lambent
// does not use them) instead of failing the request.
class RequestParser final : public bhttp::request_parser<bhttp::string_body> {
 public:
  RequestParser(decltype(ConnectionOptions::keep_field) keep, const HeadCheck* check,
                std::uint64_t body_limit, ReadBuffer* buffer, BodyBudget* budget)
      : keep_(keep), check_(check), body_limit_(body_limit), buffer_(buffer), budget_(budget) {}
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;
  ~RequestParser() override { give_back(); }
  // The body is complete (or abandoned): its bytes leave the budget.
  void give_back() {
    charging_ = false;
    if (taken_ > 0) budget_->give(std::exchange(taken_, 0));
  }
  // The body did not fit in the budget: parsing stopped, after the head or part of the body.
  bool over_budget() const { return over_budget_; }
  // After each read of a large body: what has arrived of it (parsed into the body, or still in
  // the buffer) is taken from the budget. False, and over_budget(), when it does not fit.
  bool charge() {
    if (!charging_) return true;
    const std::uint64_t arrived = this->get().body().size() + buffer_->size();
    if (arrived <= taken_) return true;
    if (!budget_->take(arrived - taken_, taken_)) {
      over_budget_ = true;
      return false;
    }
    taken_ = arrived;
    return true;
  }
  // The answer of a HeadCheck that refused this request (parsing stopped after the head).
  std::optional<Response>& refusal() { return refusal_; }
  // The request asked for "100 Continue" before sending its body (Expect: 100-continue) and
  // parsing stopped after its head; resume() once the interim answer is written.
  bool awaits_continue() const { return awaits_continue_; }
  void resume() {
    awaits_continue_ = false;
    this->eager(true);
  }

 private:
  void on_header_impl(boost::beast::error_code& ec) override {
    ec = {};
    // RFC 9112 §6.1, §6.3: chunked is the only transfer coding accepted. Beast frames a request
    // whose codings do not end in chunked as bodiless, and the bytes of its body would then be
    // read as the next request (smuggled past whatever checked this one).
    if (transfer_codings_ > 0 && !(transfer_codings_ == 1 && only_chunked_)) {
      this->eager(false);
      ec = bhttp::error::bad_transfer_encoding;
      return;
    }
    const bool chunked = this->chunked();
    const std::uint64_t declared = this->content_length().value_or(0);
    // Only a flag: the buffer itself must not change while Beast parses out of it.
    if (chunked || declared > ReadBuffer::kLargeBody) buffer_->large_body = true;
    const bool large = chunked || declared > kHeadCheckBytes;
    std::uint64_t limit = body_limit_;  // what a chunked body may add up to
    if (large && check_ != nullptr && *check_) {
      refusal_ = (*check_)(this->get(), limit);
      if (refusal_) {
        // Beast goes on to the body when more bytes are buffered and the parser is eager,
        // which would clear this error: it must stop here.
        this->eager(false);
        ec = boost::system::errc::make_error_code(boost::system::errc::permission_denied);
        return;
      }
      if (limit < body_limit_) this->body_limit(limit);
    }
    // A large body is counted in the budget as it arrives (charge()). Refused from its head
    // only when the budget is full already: declared sizes cost nothing until sent.
    if (large && budget_ != nullptr) {
      if (!budget_->has_room(kHeadCheckBytes)) {
        over_budget_ = true;
        this->eager(false);
        ec = boost::system::errc::make_error_code(boost::system::errc::no_buffer_space);
        return;
      }
      charging_ = true;
    }
    // RFC 9110 §10.1.1: a client that sent Expect: 100-continue waits (curl: 1 s) for an
    // interim answer before it sends the body. HTTP/1.0 clients' expectations are ignored.
    if (expect_continue_ && (chunked || declared > 0) && this->get().version() >= 11) {
      awaits_continue_ = true;
      this->eager(false);
      ec = boost::system::errc::make_error_code(boost::system::errc::operation_in_progress);
    }
  }

  void on_field_impl(bhttp::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code&) override {
    constexpr std::size_t kMaxField = 0xffff - 2;
    if (name == bhttp::field::expect && boost::beast::iequals(value, "100-continue"))
      expect_continue_ = true;
    if (name == bhttp::field::transfer_encoding) {
      ++transfer_codings_;
      std::string_view v = value;
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      if (!boost::beast::iequals(v, "chunked")) only_chunked_ = false;
    }
    if (value.size() >= kMaxField || name_string.size() >= kMaxField) return;
    if (keep_ && !keep_(name, name_string)) return;
    this->get().insert(name, name_string, value);
  }

  decltype(ConnectionOptions::keep_field) keep_;
  const HeadCheck* check_;
  std::uint64_t body_limit_;
  ReadBuffer* buffer_;
  BodyBudget* budget_;
  std::uint64_t taken_ = 0;  // of budget_
  bool charging_ = false;    // a large body, counted in budget_ as it arrives
  bool over_budget_ = false;
  std::optional<Response> refusal_;
  bool expect_continue_ = false;
  bool awaits_continue_ = false;
  int transfer_codings_ = 0;  // Transfer-Encoding fields
  bool only_chunked_ = true;  // and each of them is exactly "chunked"
};
}  // namespace

// One connection. Lives on one shard; every member is touched only there.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, ConnectionOptions options, std::shared_ptr<const Handler> handler,
          std::shared_ptr<const ParseErrorHandler> on_parse_error, std::function<void()> on_close,
          std::shared_ptr<const HeadCheck> check_head)
      : socket_(std::move(socket)),
        sweep_(socket_.get_executor()),
        options_(options),
        handler_(std::move(handler)),
        on_parse_error_(std::move(on_parse_error)),
        on_close_(std::move(on_close)),
        check_head_(std::move(check_head)) {}

  ~Session() {
    if (on_close_) on_close_();
  }

  void start() {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    if (options_.send_stall_ms > 0) {
      const unsigned int ms = options_.send_stall_ms;
      if (::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) !=
          0)
        LAMBENT_LOG_WARN("http", "TCP_USER_TIMEOUT: {}", std::strerror(errno));
    }
    read_next();
  }

  asio::io_context& context() { return socket_.get_executor().context(); }
  bool on_own_shard() { return socket_.get_executor().running_in_this_thread(); }

  void send(Response&& res) {
    if (on_own_shard()) {
      write(std::move(res));
      return;
    }
    asio::io_context* from = options_.follow_responder ? t_shard_context : nullptr;
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), r = std::move(res), from]() mutable {
                 self->move_to_ = from;
                 self->write(std::move(r));
               });
  }

  void abandon() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void read_next() {
    if (options_.idle_ms > 0 || options_.head_ms > 0 || options_.body_ms > 0) {
      reading_since_ = std::chrono::steady_clock::now();
      reading_ = true;
      body_seen_ = 0;
      head_started_ = false;
      if (!sweeping_) sweep();
    }
    buffer_.next_request();
    parser_.emplace(options_.keep_field, check_head_.get(), options_.body_bytes, &buffer_,
                    options_.body_budget.get());
    parser_->header_limit(options_.header_bytes);
    parser_->body_limit(options_.body_bytes);
    parser_->eager(true);  // as async_read sets it: head and body of a request in one go
    read_request();
  }

  // One read at a time (Beast's async_read is the same loop), so that a large body is counted
  // in the body budget as it arrives.
  void read_request() {
    bhttp::async_read_some(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read_some(ec); });
  }

  void on_read_some(beast::error_code ec) {
    if (!ec && !parser_->is_done() && parser_->charge()) {
      read_request();
      return;
    }
    on_read(ec);
  }

  // Expect: 100-continue. Responses held for the client (hold_pipelined_replies) answer
  // requests before this one, so they leave first, in the same write.
  void send_continue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    held_ += kContinue;
    asio::async_write(socket_, asio::buffer(held_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->held_.clear();
                        if (ec || !self->parser_) {
                          self->close();
                          return;
                        }
                        self->parser_->resume();
                        if (self->sweeping_) {  // body_ms counts from here
                          self->reading_since_ = std::chrono::steady_clock::now();
                          self->body_seen_ = 0;
                          self->reading_ = true;
                        }
                        self->read_request();
                      });
  }

  // Closes the connection when it has waited too long for a request (idle_ms,
  // head_ms) or for more of a body (body_ms). Holds the session weakly: a
  // connection's lifetime stays its own.
  void sweep() {
    sweeping_ = true;
    const auto set = [](std::uint32_t ms) { return ms > 0 ? ms : UINT32_MAX; };
    const auto shortest =
        std::min({set(options_.idle_ms), set(options_.head_ms), set(options_.body_ms)});
    sweep_.expires_after(
        std::chrono::milliseconds(std::clamp<std::uint32_t>(shortest / 2, 50, 5000)));
    sweep_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      // A refused request's connection lingers on this timer (linger()); a sweep that had
      // already expired when linger() took it over must not take it back.
      if (ec || !self || !self->socket_.is_open() || self->lingering_) return;
      if (self->reading_ && self->parser_ && self->waited_too_long()) {
        self->close();
        return;
      }
      self->sweep();
    });
  }

  bool waited_too_long() {
    const auto now = std::chrono::steady_clock::now();
    std::uint32_t limit = 0;
    if (!parser_->is_header_done()) {
      const bool started = parser_->got_some() || buffer_.size() > 0;
      if (started && !head_started_) {
        // head_ms counts from the first byte of the head (as a sweep sees it), not from the
        // idle wait before it: a keep-alive connection idle for a while is no slower for it.
        head_started_ = true;
        reading_since_ = now;
      }
      limit = started ? options_.head_ms : options_.idle_ms;
    } else {
      // Body bytes are in the parsed body or, not yet parsed, in the buffer.
      const std::size_t seen = parser_->get().body().size() + buffer_.size() + 1;
      if (seen != body_seen_) {  // progress since the last sweep: the clock restarts
        body_seen_ = seen;
        reading_since_ = now;
      }
      limit = options_.body_ms;
    }
    return limit > 0 && now - reading_since_ > std::chrono::milliseconds(limit);
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (parser_ && parser_->awaits_continue()) {
      send_continue();
      return;
    }
    // Whatever happened, no more of this body will be received.
    if (parser_) parser_->give_back();
    // A refused request's answer is built from its head; then the parser goes, and with it
    // whatever part of the body had arrived: a connection lingers for up to 30 s, and what it
    // holds is no longer counted in the body budget.
    if (parser_ && parser_->refusal()) {
      Response res = std::move(*parser_->refusal());
      parser_.reset();
      res.keep_alive(false);
      lingering_ = true;
      write(std::move(res));
      return;
    }
    if (parser_ && parser_->over_budget()) {
      if (!on_parse_error_) {
        close();
        return;
      }
      Response res = (*on_parse_error_)(parser_->get(), "too many request bodies being received",
                                        ParseFailure::kOverBudget);
      parser_.reset();
      res.keep_alive(false);
      lingering_ = true;
      write(std::move(res));
      return;
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      const auto why = ec == bhttp::error::body_limit ? ParseFailure::kBodyTooLarge
                       : ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow
                           ? ParseFailure::kHeadTooLarge
                           : ParseFailure::kMalformed;
      if (on_parse_error_) {
        Response res = (*on_parse_error_)(parser_->get(), ec.message(), why);
        parser_.reset();
        res.keep_alive(false);
        lingering_ = why == ParseFailure::kBodyTooLarge;  // the body may still be on its way
        write(std::move(res));
      } else {
        close();
      }
      return;
    }
    Request req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    (*handler_)(std::move(req), Responder(shared_from_this()));
  }

  void write(Response&& res) {
    if (!socket_.is_open()) return;
    if (!keep_alive_) res.keep_alive(false);
    write_keep_alive_ = res.keep_alive();
    serialize_header(res);
    if (should_hold(res.body().size())) {
      held_ += header_;
      held_ += res.body();
      read_next();  // completes from the buffer, without a syscall
      return;
    }
    body_ = std::move(res.body());
    const std::array<asio::const_buffer, 3> bufs{asio::buffer(held_), asio::buffer(header_),
                                                 asio::buffer(body_)};
    asio::async_write(socket_, bufs,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->on_write(ec);
                      });
  }

  // ConnectionOptions::hold_pipelined_replies: hold this response if a complete
  // request head is already buffered behind it (the client pipelined, so it
  // reads this answer and the next in turn and cannot use one before the other).
  bool should_hold(std::size_t body_size) const {
    constexpr std::size_t kMaxHeld = 16 * 1024;
    if (!options_.hold_pipelined_replies || !write_keep_alive_ || buffer_.size() == 0 ||
        held_.size() + header_.size() + body_size > kMaxHeld) {
      return false;
    }
    const auto data = buffer_.cdata();
    const std::string_view buffered(static_cast<const char*>(data.data()), data.size());
    return buffered.find("\r\n\r\n") != std::string_view::npos;
  }

  // Writes the same bytes as Beast's serializer after prepare_payload() (status line, the
  // fields in order, Content-Length last), into a buffer the connection reuses: Beast's
  // serializer and prepare_payload's field insertion were ~1/5 of the daemon's instructions
  // per warm invoke.
  void serialize_header(Response& res) {
    const auto code = res.result_int();
    const bool bodiless = code / 100 == 1 || code == 204 || code == 304;
    if (bodiless && !res.body().empty()) res.prepare_payload();  // throws, as it always did
    header_.clear();
    header_ += "HTTP/";
    header_ += static_cast<char>('0' + res.version() / 10);
    header_ += '.';
    header_ += static_cast<char>('0' + res.version() % 10);
    header_ += ' ';
    header_ += static_cast<char>('0' + code / 100);
    header_ += static_cast<char>('0' + (code / 10) % 10);
    header_ += static_cast<char>('0' + code % 10);
    header_ += ' ';
    const auto reason = res.reason();
    header_.append(reason.data(), reason.size());
    header_ += "\r\n";
    for (const auto& f : res) {
      if (f.name() == bhttp::field::content_length) continue;  // re-added last, like set()
      const auto name = f.name_string();
      const auto value = f.value();
      header_.append(name.data(), name.size());
      header_ += ": ";
      header_.append(value.data(), value.size());
      header_ += "\r\n";
    }
    char length[24];  // std::to_chars: fmt's "{}" costs more than the rest of this header
    const auto end = std::to_chars(length, length + sizeof(length), res.body().size()).ptr;
    header_ += "Content-Length: ";
    header_.append(length, end);
    header_ += "\r\n\r\n";
  }

  void on_write(boost::system::error_code ec) {
    held_.clear();
    body_ = std::string();  // an idle keep-alive connection holds no payload
    if (!ec && lingering_) {
      linger();
      return;
    }
    if (ec || !write_keep_alive_) {
      close();
      return;
    }
    if (auto* target = std::exchange(move_to_, nullptr); target && target != &context()) {
      move_to(*target);
      return;
    }
    read_next();
  }

  // ConnectionOptions::follow_responder. Called between requests: nothing is
  // pending on the socket, so it can leave this shard's epoll set and join the
  // target's, where a new Session (same buffer, options and handlers) reads on.
  void move_to(asio::io_context& target) {
    boost::system::error_code ec;
    const auto protocol = socket_.local_endpoint(ec).protocol();
    if (ec) {
      close();
      return;
    }
    // Owns the descriptor until the target adopts it (closed if it never runs).
    auto fd = std::make_shared<UniqueFd>(socket_.release(ec));
    if (ec || !*fd) {
      close();
      return;
    }
    auto next =
        std::make_shared<Session>(Socket(target.get_executor()), options_, handler_,
                                  on_parse_error_, std::exchange(on_close_, nullptr), check_head_);
    next->buffer_ = std::move(buffer_);
    next->keep_alive_ = keep_alive_;
    asio::post(target, [next, fd, protocol] {
      boost::system::error_code ec;
      next->socket_.assign(protocol, fd->get(), ec);
      if (ec) return;  // fd still owned: closed with it
      (void)fd->release();
      next->read_next();
    });
  }

  // After refusing a request whose body is still arriving: stop sending, then read and drop
  // what comes while it keeps coming (a pause of 2 s ends it, and so do 30 s or 128 MiB in
  // all) before closing. Closing at once with unread data resets the connection, and the
  // client may never read the answer (and an SDK retries, sending the body again).
  void linger() {
    static constexpr std::size_t kLingerBytes = 128 * 1024 * 1024;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.clear();
    linger_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    drain(kLingerBytes);
  }

  void drain(std::size_t budget) {
    // Re-armed on every read: expires_at cancels the previous wait (its handler sees an error).
    sweep_.expires_at(
        std::min(std::chrono::steady_clock::now() + std::chrono::seconds(2), linger_until_));
    sweep_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->close();
    });
    socket_.async_read_some(
        buffer_.prepare(64 * 1024),
        [self = shared_from_this(), budget](boost::system::error_code ec, std::size_t n) {
          self->buffer_.clear();
          if (ec || n >= budget) {
            self->close();
            return;
          }
          self->drain(budget - n);
        });
  }

  void close() {
    if (!socket_.is_open()) return;
    boost::system::error_code ignored;
    // Held responses still go out, best effort: a few KiB into an idle socket. Non-blocking:
    // a peer that stopped reading must not stall this shard in a synchronous write.
    if (!held_.empty()) {
      socket_.non_blocking(true, ignored);
      socket_.write_some(asio::buffer(held_), ignored);
    }
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
    sweep_.cancel();
  }

  Socket socket_;
  asio::steady_timer sweep_;  // idle_ms / head_ms / body_ms
  std::chrono::steady_clock::time_point reading_since_;
  bool reading_ = false;       // waiting for a request (idle_ms / head_ms / body_ms apply)
  std::size_t body_seen_ = 0;  // body_ms: body bytes at the last sweep, plus one (0: none yet)
  bool head_started_ = false;  // head_ms: a sweep has seen the head's first bytes
  bool sweeping_ = false;      // sweep_ is armed
  ConnectionOptions options_;
  std::shared_ptr<const Handler> handler_;
  std::shared_ptr<const ParseErrorHandler> on_parse_error_;
  std::function<void()> on_close_;
  ReadBuffer buffer_;
  std::optional<RequestParser> parser_;
  std::string header_;  // the response being written: serialized header, then its body
  std::string body_;
  std::string held_;  // responses held for the next write (hold_pipelined_replies)
  asio::io_context* move_to_ = nullptr;  // follow_responder: the shard that answered
  std::shared_ptr<const HeadCheck> check_head_;
  bool lingering_ = false;  // the answer refuses a request: linger() after writing it
  std::chrono::steady_clock::time_point linger_until_;
  bool keep_alive_ = true;
  bool write_keep_alive_ = true;
};

bool BodyBudget::take(std::uint64_t n, std::uint64_t mine) {
  std::uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (used != mine && (n > limit_ || used > limit_ - n)) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

bool BodyBudget::has_room(std::uint64_t n) const {
  const std::uint64_t used = used_.load(std::memory_order_relaxed);
  return used == 0 || (n <= limit_ && used <= limit_ - n);
}

Responder::Responder(std::shared_ptr<Session> s) : session_(std::move(s)) {}
Responder::~Responder() {
  if (session_) session_->abandon();
}
void Responder::send(Response&& res) {
  if (!session_) return;
  auto s = std::move(session_);
  s->send(std::move(res));
}
bool Responder::on_own_shard() const {
  return session_ && session_->on_own_shard();
}
asio::io_context& Responder::context() const {
  return session_->context();
}

// ---- Shards ----

std::vector<std::vector<int>> partition_cpus(const std::vector<int>& cpus, int n) {
  std::vector<std::vector<int>> out(static_cast<std::size_t>(std::max(n, 0)));
  if (out.empty() || cpus.empty()) return out;
  const std::size_t count = std::max(cpus.size(), out.size());
  for (std::size_t j = 0; j < count; ++j) out[j % out.size()].push_back(cpus[j % cpus.size()]);
  return out;
}

Shards::Shards(int count) : cpus_(partition_cpus(allowed_cpus(), count)) {
  for (int i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        contexts_.back()->get_executor()));
  }
}

Shards::~Shards() {
  stop();
}

int Shards::current() {
  return t_shard_index;
}

namespace {

// io_context::run(), except that once the queue is empty the loop polls (epoll_wait with no
// timeout, through poll()) for up to the window before it blocks in run_one().
void run_polling(asio::io_context& ctx, PollWindow& window) {
  using Clock = std::chrono::steady_clock;
  auto idle_since = Clock::now();
  for (;;) {
    if (ctx.poll() > 0) {
      idle_since = Clock::now();
      continue;
    }
    if (ctx.stopped()) return;
    if (Clock::now() - idle_since < window.window()) {
      sched_yield();  // a runnable process on this CPU (a runtime, a sandbox being made) goes first
      continue;
    }
    if (ctx.run_one() == 0) return;  // stopped
    const auto woke = Clock::now();
    window.waited(woke - idle_since);
    idle_since = woke;
  }
}

}  // namespace

void Shards::start(bool pin_threads, std::chrono::nanoseconds poll_max) {
  // start() returns once every loop runs on its CPUs under its name: a daemon that says it is
  // ready has its loops placed (a test read a loop still unnamed and unpinned).
  std::latch placed(static_cast<std::ptrdiff_t>(contexts_.size()));
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i, pin_threads, poll_max, &placed] {
      t_shard_index = static_cast<int>(i);
      t_shard_context = contexts_[i].get();
      if (pin_threads && !cpus_[i].empty()) {
        const cpu_set_t set = cpu_set_of(cpus_[i]);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      }
      pthread_setname_np(pthread_self(), ("shard-" + std::to_string(i)).c_str());
      placed.count_down();
      // A handler that throws must not take the daemon down: log and go on.
      PollWindow window(poll_max);
      for (;;) {
        try {
          if (poll_max > std::chrono::nanoseconds::zero()) {
            run_polling(*contexts_[i], window);
          } else {
            contexts_[i]->run();
          }
          return;
        } catch (const std::exception& e) {
          LAMBENT_LOG_ERROR("http", "shard {}: unexpected exception: {}", i, e.what());
        }
      }
    });
  }
  placed.wait();
}

void Shards::stop() {
  for (auto& g : guards_) g->reset();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void serve_connection(Socket socket, const ConnectionOptions& options,
                      std::shared_ptr<const Handler> handler,
                      std::shared_ptr<const ParseErrorHandler> on_parse_error,
                      std::function<void()> on_close, std::shared_ptr<const HeadCheck> check_head) {
  std::make_shared<Session>(std::move(socket), options, std::move(handler),
                            std::move(on_parse_error), std::move(on_close), std::move(check_head))
      ->start();
}

// ---- Accepting ----

namespace {
struct AcceptLoop : std::enable_shared_from_this<AcceptLoop> {
  AcceptLoop(std::shared_ptr<void> o, Acceptor& a, asio::steady_timer& b,
             std::function<void(Socket)> f)
      : owner(std::move(o)), acceptor(a), backoff(b), on_socket(std::move(f)) {}

  void next() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, Socket socket) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        self->on_socket(std::move(socket));
        self->next();
        return;
      }
      LAMBENT_LOG_RATELIMITED(warn, "http", "accept failed: {}", ec.message());
      self->backoff.expires_after(std::chrono::milliseconds(100));
      self->backoff.async_wait([self](boost::system::error_code wait_ec) {
        if (!wait_ec && self->acceptor.is_open()) self->next();
      });
    });
  }

  std::shared_ptr<void> owner;
  Acceptor& acceptor;
  asio::steady_timer& backoff;
  std::function<void(Socket)> on_socket;
};
}  // namespace

void accept_loop(std::shared_ptr<void> owner, Acceptor& acceptor, asio::steady_timer& backoff,
                 std::function<void(Socket)> on_socket) {
  std::make_shared<AcceptLoop>(std::move(owner), acceptor, backoff, std::move(on_socket))->next();
}

// ---- Server ----

struct Server::Listener : std::enable_shared_from_this<Server::Listener> {
  Listener(asio::io_context& ioc, ConnectionOptions l, std::shared_ptr<const Handler> h,
           std::shared_ptr<const ParseErrorHandler> pe, std::shared_ptr<const HeadCheck> hc)
      : acceptor(ioc.get_executor()),
        backoff(ioc),
        options(l),
        handler(std::move(h)),
        on_parse_error(std::move(pe)),
        check_head(std::move(hc)) {}

  void accept() {
    accept_loop(shared_from_this(), acceptor, backoff, [this](Socket socket) {
      serve_connection(std::move(socket), options, handler, on_parse_error, {}, check_head);
    });
  }

  http::Acceptor acceptor;
  asio::steady_timer backoff;  // between failed accepts
  ConnectionOptions options;
  std::shared_ptr<const Handler> handler;
  std::shared_ptr<const ParseErrorHandler> on_parse_error;
  std::shared_ptr<const HeadCheck> check_head;
};

Server::Server(Shards& shards, ConnectionOptions options, Handler handler,
               ParseErrorHandler on_parse_error, HeadCheck check_head)
    : shards_(shards),
      options_(options),
      handler_(std::make_shared<const Handler>(std::move(handler))),
      on_parse_error_(std::make_shared<const ParseErrorHandler>(std::move(on_parse_error))),
      check_head_(check_head ? std::make_shared<const HeadCheck>(std::move(check_head)) : nullptr) {
}

Server::~Server() {
  close();
}

Result<void> Server::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return fail(Errc::kInvalidParameter, "bad listen address '" + host + "'");
  tcp::endpoint ep(addr, port);
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  for (int i = 0; i < shards_.size(); ++i) {
    auto a =
        std::make_shared<Listener>(shards_.at(i), options_, handler_, on_parse_error_, check_head_);
    a->acceptor.open(ep.protocol(), ec);
    if (!ec) a->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a->acceptor.set_option(reuse_port(true), ec);
    if (!ec) a->acceptor.bind(ep, ec);
    if (!ec) a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      close();
      return fail(sys_error("listening on " + host + ":" + std::to_string(ep.port()), ec.value()));
    }
    // Later acceptors join the port the first one got (port 0 = ephemeral).
    ep.port(a->acceptor.local_endpoint().port());
    acceptors_.push_back(a);
  }
  port_ = ep.port();
  for (auto& a : acceptors_) asio::post(a->acceptor.get_executor(), [a] { a->accept(); });
  return {};
}

void Server::close() {
  for (auto& a : acceptors_) {
    asio::post(a->acceptor.get_executor(), [a] {
      boost::system::error_code ignored;
      a->acceptor.close(ignored);
      a->backoff.cancel();
    });
  }
  acceptors_.clear();
}

Response json_response(unsigned status, std::string body, bool keep_alive) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  return res;
}

}  // namespace lambent::http
