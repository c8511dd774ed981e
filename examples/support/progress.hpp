#pragma once
// Per-epoch progress: a redrawn bar on a terminal, plain periodic lines otherwise (CI, pipes).

#include <unistd.h>

#include <cstdio>
#include <string>

#include "nn/training.hpp"

namespace example {

class ProgressReporter {
public:
    explicit ProgressReporter(std::size_t epochs) : epochs_(epochs), terminal_(isatty(fileno(stdout)) == 1) {}

    void operator()(std::size_t epoch, const nn::Progress& p) {
        const double rate = p.seconds > 0 ? double(p.examples) / p.seconds : 0;
        const double left = rate > 0 ? p.seconds * (double(p.batches) / double(p.batch) - 1) : 0;
        if (terminal_) {
            constexpr int width = 30;
            const int filled = static_cast<int>(width * p.batch / p.batches);
            std::printf("\repoch %zu/%zu [%s%s] %zu/%zu  loss %.4f  %.0f ex/s  %4.1fs left ", epoch + 1, epochs_,
                        std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), p.batch,
                        p.batches, p.running_loss, rate, left);
            if (p.batch == p.batches) std::printf("\r%*s\r", 100, "");
            std::fflush(stdout);
        } else if (p.batch == p.batches || p.seconds >= next_line_at_) {
            // Not a terminal: a line at most every 10 seconds, so logs stay short.
            next_line_at_ = p.seconds + 10;
            if (p.batch != p.batches)
                std::printf("epoch %zu/%zu: batch %zu/%zu, loss %.4f, %.0f examples/s\n", epoch + 1, epochs_, p.batch,
                            p.batches, p.running_loss, rate);
        }
        if (p.batch == p.batches) next_line_at_ = 10;
    }

private:
    std::size_t epochs_;
    bool terminal_;
    double next_line_at_ = 10;
};

}  // namespace example
