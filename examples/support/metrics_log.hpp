#pragma once
// Metrics per epoch to a CSV (rewritten atomically after every epoch, so an interrupted
// run keeps what it had), and a loss/accuracy plot made by gnuplot when it is installed.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nn/io/atomic_file.hpp"
#include "nn/training.hpp"

namespace example {

struct EpochRow {
    std::size_t epoch;
    nn::EpochStats train, test;
};

class MetricsLog {
public:
    explicit MetricsLog(std::string csv_path) : path_(std::move(csv_path)) {}

    void add(const EpochRow& row) {
        rows_.push_back(row);
        if (path_.empty()) return;
        nn::write_file_atomically(path_, [&](std::ostream& out) {
            out << "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n";
            for (const EpochRow& r : rows_)
                out << r.epoch << ',' << r.train.loss << ',' << r.train.accuracy << ',' << r.test.loss << ','
                    << r.test.accuracy << ',' << r.train.seconds << '\n';
        });
    }

    // Returns false (and says why) when gnuplot is missing or fails; the CSV is still there.
    bool plot(const std::string& image_path) const {
        if (path_.empty() || std::system("command -v gnuplot >/dev/null 2>&1") != 0) return false;
        const bool svg = image_path.size() > 4 && image_path.substr(image_path.size() - 4) == ".svg";
        const std::string script = path_ + ".gnuplot";
        std::ofstream(script)
            << (svg ? "set terminal svg size 900,400\n" : "set terminal pngcairo size 900,400\n")
            << "set output '" << image_path << "'\n"
            << "set datafile separator ','\nset key autotitle columnhead\nset multiplot layout 1,2\n"
            << "set xlabel 'epoch'\nset title 'loss'\nplot '" << path_ << "' using 1:2 with linespoints title 'train', '' using 1:4 with linespoints title 'test'\n"
            << "set title 'accuracy'\nplot '" << path_ << "' using 1:3 with linespoints title 'train', '' using 1:5 with linespoints title 'test'\n"
            << "unset multiplot\n";
        const bool ok = std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) == 0;
        std::filesystem::remove(script);
        return ok;
    }

private:
    std::string path_;
    std::vector<EpochRow> rows_;
};

}  // namespace example
