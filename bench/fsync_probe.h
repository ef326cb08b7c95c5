// The disk's own fsync rate, as the ledger and engine benchmarks measure it: N x (write +
// fdatasync) in two modes, 4 KiB overwrites at offset 0 (as a WAL that restarted in place
// is written) and 512 B appends (the file grows, so each sync also writes its size); the
// two modes of the peer benchmarks' fsync-rate.py. The faster mode is the ceiling of a
// design that fsyncs once per commit.
//
// The two test files live as long as the probe and are removed with it: deleting or
// truncating one between measurements would free blocks, and on a file system mounted with
// `discard` the device's TRIM would then slow whatever is measured right after.
//
// Header-only, for bench/ only. Errors end the process (a benchmark has nobody to report
// to). Not thread-safe.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace keel::bench {

class FsyncProbe {
 public:
  // What Measure() added up for one mode.
  struct Mode {
    std::vector<double> lat_us;  // one per write + fdatasync
    double seconds = 0;
    double PerSecond() const { return seconds > 0 ? lat_us.size() / seconds : 0; }
    double Percentile(double p) const {
      if (lat_us.empty()) return 0;
      std::vector<double> v = lat_us;
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1,
                        static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1))))];
    }
  };

  explicit FsyncProbe(const std::string& dir)
      : over_path_(dir + "/fsync-over.bin"), app_path_(dir + "/fsync-app.bin") {
    over_ = ::open(over_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    app_ = ::open(app_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (over_ < 0 || app_ < 0) Die("cannot create the fsync test files in " + dir);
    std::vector<char> buf(4096, 'x');
    if (::pwrite(over_, buf.data(), buf.size(), 0) != static_cast<ssize_t>(buf.size()) ||
        ::fsync(over_) != 0) {
      Die("cannot write " + over_path_);
    }
  }
  ~FsyncProbe() {
    ::close(over_);
    ::close(app_);
    ::unlink(over_path_.c_str());
    ::unlink(app_path_.c_str());
  }
  FsyncProbe(const FsyncProbe&) = delete;
  FsyncProbe& operator=(const FsyncProbe&) = delete;

  // n x (write + fdatasync) in one mode, added to that mode's totals; returns the rate of
  // this measurement alone.
  double Measure(int n, bool append) {
    Mode& m = append ? append_ : overwrite_;
    int fd = append ? app_ : over_;
    std::vector<char> buf(append ? 512 : 4096, append ? 'y' : 'x');
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto s = Clock::now();
      ssize_t w =
          append ? ::write(fd, buf.data(), buf.size()) : ::pwrite(fd, buf.data(), buf.size(), 0);
      if (w != static_cast<ssize_t>(buf.size())) Die("write failed");
      if (::fdatasync(fd) != 0) Die("fdatasync failed");
      m.lat_us.push_back(Micros(s));
    }
    double s = Micros(t0) / 1e6;
    m.seconds += s;
    return n / s;
  }
  // Both modes, n each.
  void MeasureBoth(int n) {
    Measure(n, false);
    Measure(n, true);
  }

  const Mode& overwrite() const { return overwrite_; }
  const Mode& append() const { return append_; }
  const Mode& faster() const {
    return append_.PerSecond() > overwrite_.PerSecond() ? append_ : overwrite_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double Micros(Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  }
  [[noreturn]] static void Die(const std::string& what) {
    std::fprintf(stderr, "fsync probe: %s\n", what.c_str());
    std::exit(1);
  }
  std::string over_path_, app_path_;
  int over_ = -1, app_ = -1;
  Mode overwrite_, append_;
};

}  // namespace keel::bench
