#include "server/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "server/imap_poller.hpp"

namespace dmarcd::server {
namespace {

// Upper bounds in seconds: a small report commits in milliseconds, a
// report of hundreds of megabytes or a wait for a busy database takes
// seconds.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return buckets;
}

prometheus::ClientMetric Sample(std::vector<prometheus::ClientMetric::Label> labels, double value,
                                prometheus::MetricType type) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

}  // namespace

std::string_view ChannelOf(std::string_view origin) {
  for (std::string_view channel : {"http", "imap", "file"}) {
    if (origin.size() > channel.size() && origin.substr(0, channel.size()) == channel &&
        origin[channel.size()] == ':') {
      return channel;
    }
  }
  return origin == "stdin" || origin.rfind("stdin#", 0) == 0 ? "stdin" : "other";
}

// The families read at scrape time rather than counted: the database's
// files and the IMAP accounts' state.
class Metrics::Collector : public prometheus::Collectable {
 public:
  void SetDatabasePath(std::string path) {
    std::lock_guard lock(mutex_);
    database_path_ = std::move(path);
  }
  void SetImapHealth(const ImapHealth* health) {
    std::lock_guard lock(mutex_);
    imap_health_ = health;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard lock(mutex_);
    std::vector<prometheus::MetricFamily> families;
    if (!database_path_.empty()) families.push_back(DatabaseSize());
    if (imap_health_ != nullptr) AppendImap(families);
    return families;
  }

 private:
  // The WAL counts too: it holds commits not yet checkpointed into the
  // main file, and a full disk is full whichever file grew.
  prometheus::MetricFamily DatabaseSize() const {
    prometheus::MetricFamily family{"dmarcd_database_size_bytes",
                                    "Size of the SQLite database files on disk.",
                                    prometheus::MetricType::Gauge,
                                    {}};
    for (const auto& [file, suffix] : {std::pair{"main", ""}, std::pair{"wal", "-wal"}}) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(database_path_ + suffix, ec);
      family.metric.push_back(Sample({{"file", file}}, ec ? 0.0 : static_cast<double>(size),
                                     prometheus::MetricType::Gauge));
    }
    return family;
  }

  void AppendImap(std::vector<prometheus::MetricFamily>& families) const {
    prometheus::MetricFamily polls{
        "dmarcd_imap_polls_total", "IMAP polls per account.", prometheus::MetricType::Counter, {}};
    prometheus::MetricFamily failures{"dmarcd_imap_poll_failures_total",
                                      "IMAP polls that failed or left messages behind.",
                                      prometheus::MetricType::Counter,
                                      {}};
    prometheus::MetricFamily last_good{"dmarcd_imap_last_good_poll_timestamp_seconds",
                                       "Unix time of the last IMAP poll that went well.",
                                       prometheus::MetricType::Gauge,
                                       {}};
    for (const ImapHealth::Account& account : imap_health_->Snapshot()) {
      const std::vector<prometheus::ClientMetric::Label> labels = {{"account", account.name}};
      polls.metric.push_back(
          Sample(labels, static_cast<double>(account.polls), prometheus::MetricType::Counter));
      failures.metric.push_back(Sample(labels, static_cast<double>(account.failed_polls),
                                       prometheus::MetricType::Counter));
      if (account.last_good_poll) {
        last_good.metric.push_back(Sample(labels, static_cast<double>(*account.last_good_poll),
                                          prometheus::MetricType::Gauge));
      }
    }
    families.push_back(std::move(polls));
    families.push_back(std::move(failures));
    families.push_back(std::move(last_good));
  }

  mutable std::mutex mutex_;
  std::string database_path_;
  const ImapHealth* imap_health_ = nullptr;
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<Collector>()),
      envelopes_(prometheus::BuildCounter()
                     .Name("dmarcd_envelopes_total")
                     .Help("Envelopes handled, by channel and outcome.")
                     .Register(*registry_)),
      reports_(prometheus::BuildCounter()
                   .Name("dmarcd_reports_stored_total")
                   .Help("Reports stored, by kind.")
                   .Register(*registry_)),
      records_(prometheus::BuildCounter()
                   .Name("dmarcd_records_stored_total")
                   .Help("Aggregate report records stored.")
                   .Register(*registry_)
                   .Add({})),
      duplicates_(prometheus::BuildCounter()
                      .Name("dmarcd_duplicate_reports_total")
                      .Help("Reports received again and not stored twice, by kind.")
                      .Register(*registry_)),
      rejected_(prometheus::BuildCounter()
                    .Name("dmarcd_rejected_parts_total")
                    .Help("Parts of envelopes rejected, by reason.")
                    .Register(*registry_)),
      deferred_(prometheus::BuildCounter()
                    .Name("dmarcd_deferred_envelopes_total")
                    .Help("Envelopes not committed for a fault of the environment, by reason.")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("dmarcd_ingest_duration_seconds")
                   .Help("Time from an envelope's arrival at the writer queue to its outcome.")
                   .Register(*registry_)
                   .Add({}, LatencyBuckets())),
      http_(prometheus::BuildCounter()
                .Name("dmarcd_http_requests_total")
                .Help("HTTP requests answered, by route and status.")
                .Register(*registry_)),
      writer_up_(prometheus::BuildGauge()
                     .Name("dmarcd_writer_up")
                     .Help("1 while the last envelope committed, 0 after a deferral.")
                     .Register(*registry_)
                     .Add({})) {
  writer_up_.Set(1);
}

Metrics::~Metrics() = default;

void Metrics::RecordEnvelope(std::string_view origin,
                             const Result<storage::EnvelopeOutcome>& outcome,
                             std::chrono::duration<double> elapsed) {
  const std::string channel(ChannelOf(origin));
  latency_.Observe(elapsed.count());
  if (!outcome) {
    envelopes_.Add({{"channel", channel}, {"outcome", "deferred"}}).Increment();
    deferred_.Add({{"reason", std::string(ErrorCodeName(outcome.error().code))}}).Increment();
    writer_up_.Set(0);
    return;
  }

  writer_up_.Set(1);
  envelopes_
      .Add({{"channel", channel}, {"outcome", std::string(PartStatusName(outcome->Overall()))}})
      .Increment();
  for (const storage::PartOutcome& part : outcome->parts) {
    const std::string kind = part.failure ? "failure" : "aggregate";
    switch (part.status) {
      case storage::PartStatus::kStored:
        reports_.Add({{"kind", kind}}).Increment();
        break;
      case storage::PartStatus::kDuplicate:
        duplicates_.Add({{"kind", kind}}).Increment();
        break;
      case storage::PartStatus::kRejected:
        rejected_
            .Add({{"reason", std::string(part.error ? ErrorCodeName(part.error->code)
                                                    : ErrorCodeName(ErrorCode::kNoReport))}})
            .Increment();
        break;
    }
  }
  records_.Increment(static_cast<double>(outcome->Records()));
}

void Metrics::RecordHttpRequest(std::string_view route, int status) {
  http_.Add({{"route", std::string(route)}, {"status", std::to_string(status)}}).Increment();
}

void Metrics::SetDatabasePath(std::string path) { collector_->SetDatabasePath(std::move(path)); }

void Metrics::SetImapHealth(const ImapHealth* health) { collector_->SetImapHealth(health); }

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> sampled = collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(sampled.begin()),
                  std::make_move_iterator(sampled.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace dmarcd::server
