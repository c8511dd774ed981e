#pragma once
// Metrics per epoch to a CSV (rewritten atomically after every epoch, so an interrupted
// run keeps what it had), and a loss/accuracy plot made by gnuplot when it is installed.

#include <cstdio>
#include <exception>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "nn/io/atomic_file.hpp"
#include "nn/training.hpp"
#include "gnuplot.hpp"
#include "own_outputs.hpp"

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
        nn::write_file_atomically(path_, [&](std::ostream& out) { out << csv(); });
    }

    // Draws the loss and accuracy curves into `image_path` (.svg, else PNG), written atomically.
    // The data goes into the script inline and the image comes back on gnuplot's output: the
    // paths never reach gnuplot. Throws std::runtime_error saying what failed.
    void plot(const std::string& image_path) const {
        const bool svg = is_svg_path(image_path);
        std::ostringstream script;
        script << (svg ? "set terminal svg size 900,400\n" : "set terminal pngcairo size 900,400\n")
               << "$metrics << EOD\n" << csv() << "EOD\n"
               << "set datafile separator ','\nset key autotitle columnhead\nset multiplot layout 1,2\n"
               << "set xlabel 'epoch'\nset title 'loss'\n"
               << "plot $metrics using 1:2 with linespoints title 'train', $metrics using 1:4 with linespoints title 'test'\n"
               << "set title 'accuracy'\n"
               << "plot $metrics using 1:3 with linespoints title 'train', $metrics using 1:5 with linespoints title 'test'\n"
               << "unset multiplot\n";
        const std::string image = mark_plot(run_gnuplot(script.str()), svg);  // the next run may replace it
        nn::write_file_atomically(image_path, [&](std::ostream& out) { out << image; });
    }

    // plot(), or a line saying why there is no plot: the run and its metrics stand without it.
    void plot_or_say_why(const std::string& image_path) const {
        if (image_path.empty()) return;
        try {
            plot(image_path);
        } catch (const std::exception& e) {
            std::printf("no plot: %s\n", e.what());
        }
    }

private:
    std::string csv() const {
        std::ostringstream out;
        out << metrics_header;
        for (const EpochRow& r : rows_)
            out << r.epoch << ',' << r.train.loss << ',' << r.train.accuracy << ',' << r.test.loss << ','
                << r.test.accuracy << ',' << r.train.seconds << '\n';
        return out.str();
    }

    std::string path_;
    std::vector<EpochRow> rows_;
};

}  // namespace example
