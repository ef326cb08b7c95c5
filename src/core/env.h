// Env: the bundle of injected seams (time, randomness, files) handed to every layer.
//
// Ownership: Env does not own what it points to; the wiring code (cli, tests) keeps the
// Clock, Random and FileSystem alive for as long as anything holds the Env.
#pragma once

#include "core/clock.h"
#include "core/fs.h"
#include "core/random.h"

namespace keel {

struct Env {
  Clock* clock = SystemClock();
  Random* random = SystemRandom();
  FileSystem* fs = DefaultFileSystem();
};

}  // namespace keel
