// The counters /metrics serves, in the Prometheus text exposition format
// (version 0.0.4), kept and rendered by prometheus-cpp (Debian's
// prometheus-cpp-dev, its core library only: dmarcd serves the text on
// its own HTTP server).
//
// Families (every name starts with dmarcd_):
//   envelopes_total{channel,outcome}       channel http|imap|file|stdin|other;
//                                          outcome stored|duplicate|rejected|deferred
//   reports_stored_total{kind}             kind aggregate|failure
//   records_stored_total                   aggregate records stored
//   duplicate_reports_total{kind}          reports already stored, not stored again
//   rejected_parts_total{reason}           reason: the ErrorCode name (ErrorCodeName)
//   deferred_envelopes_total{reason}       not committed, for a fault of the
//                                          environment (database_busy, database, io)
//   ingest_duration_seconds                histogram: from Submit to the outcome
//   http_requests_total{route,status}      route: Api::RouteName, a route pattern, never
//                                          the raw path, so the label set stays small
//   imap_polls_total{account}              from ImapHealth, when given
//   imap_poll_failures_total{account}
//   imap_last_good_poll_timestamp_seconds{account}  absent until a poll went well
//   database_size_bytes{file}              file main|wal, read at scrape time
//   writer_up                              1 while the last envelope committed (or none
//                                          was tried yet), 0 after a deferral
//
// Thread safety: every member may be called from any thread at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "parser/error.hpp"
#include "storage/writer.hpp"

namespace prometheus {
class Registry;
class Histogram;
class Gauge;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace dmarcd::server {

class ImapHealth;

// The channel an envelope came through, from the start of its origin
// ("http:upload/3 ...", "imap:work/INBOX;...", "file:/x.xml", "stdin").
std::string_view ChannelOf(std::string_view origin);

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts one envelope: its outcome, or a deferral when `outcome` is an
  // error (nothing was committed); `elapsed` feeds the latency histogram.
  void RecordEnvelope(std::string_view origin, const Result<storage::EnvelopeOutcome>& outcome,
                      std::chrono::duration<double> elapsed);

  void RecordHttpRequest(std::string_view route, int status);

  // Where the database lives, for database_size_bytes; empty (the
  // default) leaves the family out.
  void SetDatabasePath(std::string path);

  // The accounts the imap_ families report; must outlive this Metrics.
  // Null (the default) leaves them out.
  void SetImapHealth(const ImapHealth* health);

  // The whole exposition, every family with its HELP and TYPE lines.
  std::string Render() const;

 private:
  class Collector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Collector> collector_;
  prometheus::Family<prometheus::Counter>& envelopes_;
  prometheus::Family<prometheus::Counter>& reports_;
  prometheus::Counter& records_;
  prometheus::Family<prometheus::Counter>& duplicates_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& deferred_;
  prometheus::Histogram& latency_;
  prometheus::Family<prometheus::Counter>& http_;
  prometheus::Gauge& writer_up_;
};

}  // namespace dmarcd::server
