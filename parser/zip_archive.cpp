#include "parser/zip_archive.hpp"

#include <zip.h>

namespace dmarcd::parser {

namespace {

struct FileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

std::string ZipErrorText(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

}  // namespace

void ZipArchive::Closer::operator()(zip* archive) const { zip_discard(archive); }

ZipArchive::ZipArchive(zip* archive, uint64_t entries, const Limits& limits)
    : archive_(archive), entries_(entries), limits_(&limits) {}

Result<ZipArchive> ZipArchive::Open(std::string_view bytes, const Limits& limits) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    return MakeError(ErrorCode::kBadArchive, "zip archive cannot be read: " + ZipErrorText(&error));
  }

  zip_t* archive = zip_open_from_source(source, ZIP_RDONLY, &error);
  if (archive == nullptr) {
    zip_source_free(source);
    return MakeError(ErrorCode::kBadArchive,
                     "zip archive cannot be opened: " + ZipErrorText(&error));
  }
  zip_error_fini(&error);

  auto entries = zip_get_num_entries(archive, 0);
  if (entries < 0 ||
      static_cast<uint64_t>(entries) > static_cast<uint64_t>(limits.max_zip_entries)) {
    zip_discard(archive);
    return MakeError(ErrorCode::kTooManyEntries, "zip archive has " + std::to_string(entries) +
                                                     " entries, more than " +
                                                     std::to_string(limits.max_zip_entries));
  }
  return ZipArchive(archive, static_cast<uint64_t>(entries), limits);
}

Result<ZipEntry> ZipArchive::Entry(uint64_t index) const {
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive_.get(), index, 0, &stat) != 0) {
    return MakeError(
        ErrorCode::kBadArchive,
        "zip entry " + std::to_string(index) + " cannot be read: " + zip_strerror(archive_.get()));
  }

  ZipEntry entry;
  entry.name = (stat.valid & ZIP_STAT_NAME) != 0 ? stat.name : "entry-" + std::to_string(index);
  entry.directory = !entry.name.empty() && entry.name.back() == '/';
  entry.encrypted =
      (stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE;
  entry.compressed_size = (stat.valid & ZIP_STAT_COMP_SIZE) != 0 ? stat.comp_size : 0;
  entry.size = (stat.valid & ZIP_STAT_SIZE) != 0 ? stat.size : 0;
  return entry;
}

Result<void> ZipArchive::Read(uint64_t index, ByteSink& out) const {
  auto entry = Entry(index);
  if (!entry) return tl::unexpected(entry.error());
  if (entry->encrypted) {
    return MakeError(ErrorCode::kBadArchive, "zip entry '" + entry->name + "' is encrypted");
  }

  // A member that admits to being too large is refused before any work;
  // one that lies is caught by the same cap while it is read.
  if (entry->size > limits_->max_inflated_bytes) {
    return MakeError(ErrorCode::kTooLarge,
                     "decompressed size of zip entry '" + entry->name + "' (" +
                         std::to_string(entry->size) + " bytes declared) exceeds " +
                         std::to_string(limits_->max_inflated_bytes) + " bytes");
  }

  std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(archive_.get(), index, 0));
  if (!file) {
    return MakeError(ErrorCode::kBadArchive, "zip entry '" + entry->name + "' cannot be opened: " +
                                                 zip_strerror(archive_.get()));
  }

  std::string buffer(kChunkBytes, '\0');
  uint64_t total = 0;
  auto compressed = static_cast<double>(std::max<uint64_t>(entry->compressed_size, 1));
  while (!out.Stopped()) {
    zip_int64_t got = zip_fread(file.get(), buffer.data(), buffer.size());
    if (got < 0) {
      return MakeError(ErrorCode::kBadArchive, "zip entry '" + entry->name + "' is corrupt: " +
                                                   zip_file_strerror(file.get()));
    }
    if (got == 0) break;

    total += static_cast<uint64_t>(got);
    if (total > limits_->max_inflated_bytes) {
      return MakeError(ErrorCode::kTooLarge,
                       "decompressed size of zip entry '" + entry->name + "' exceeds " +
                           std::to_string(limits_->max_inflated_bytes) + " bytes");
    }
    if (total >= limits_->ratio_grace_bytes &&
        static_cast<double>(total) > limits_->max_compression_ratio * compressed) {
      return MakeError(ErrorCode::kRatioExceeded,
                       "compression ratio of zip entry '" + entry->name + "' above " +
                           std::to_string(static_cast<int>(limits_->max_compression_ratio)) +
                           ": a decompression bomb");
    }
    auto written = out.Write(std::string_view(buffer.data(), static_cast<size_t>(got)));
    if (!written) return written;
  }
  return {};
}

}  // namespace dmarcd::parser
