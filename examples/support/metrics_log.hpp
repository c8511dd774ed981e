#pragma once
// Metrics per epoch to a CSV (rewritten atomically after every epoch, so an interrupted
// run keeps what it had), and a loss/accuracy plot made by gnuplot when it is installed.

#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/io/atomic_file.hpp"
#include "nn/training.hpp"
#include "gnuplot.hpp"
#include "output_paths.hpp"
#include "own_outputs.hpp"

namespace example {

struct EpochRow {
    std::size_t epoch;
    nn::EpochStats train, test;
};

class MetricsLog {
public:
    /// A run resumed after `first_epoch` epochs keeps the rows of those epochs that an earlier
    /// run wrote to csv_path, so that the file and the plot tell the whole run.
    explicit MetricsLog(std::string csv_path, std::size_t first_epoch = 0) : path_(std::move(csv_path)) {
        std::error_code ec;
        if (first_epoch == 0 || path_.empty() || !std::filesystem::is_regular_file(path_, ec) ||
            !written_by_example(path_, Output::metrics))
            return;
        std::istringstream rows(detail::head_of(path_, largest_metrics_file).substr(metrics_header.size()));
        std::size_t row = 0;
        for (std::string line; std::getline(rows, line);) {
            // A whole number, or a clear refusal (std::stod's "stod" was all a run resumed with
            // an edited epoch of 1e999 said; found by an attack).
            const std::string epoch = line.substr(0, line.find(','));
            ++row;
            if (epoch.empty() || epoch.size() > 9 || epoch.find_first_not_of("0123456789") != std::string::npos)
                throw std::runtime_error("--metrics " + path_ + ": row " + std::to_string(row) + " has the epoch '" +
                                         epoch + "', not a whole number; move the file away or give another --metrics");
            if (std::stoul(epoch) <= first_epoch) earlier_rows_ += line + '\n';
        }
    }

    /// Checked again before each write (check_output_target): a user's file may have appeared
    /// there while the epoch trained.
    void add(const EpochRow& row) {
        rows_.push_back(row);
        if (path_.empty()) return;
        check_output_target(path_, "--metrics", Output::metrics);
        nn::write_file_atomically(path_, [&](std::ostream& out) { out << csv(); }, only_own(Output::metrics));
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
        check_output_target(image_path, "--plot", Output::plot);
        nn::write_file_atomically(image_path, [&](std::ostream& out) { out << image; }, only_own(Output::plot));
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
    // The write's last word (nn::write_file_atomically): a file that appeared after the check
    // is swapped back, not lost.
    static std::function<bool(const std::filesystem::path&)> only_own(Output kind) {
        return [kind](const std::filesystem::path& displaced) { return replaceable_as_own(displaced, kind); };
    }

    std::string csv() const {
        std::ostringstream out;
        out << metrics_header << earlier_rows_;
        for (const EpochRow& r : rows_)
            out << r.epoch << ',' << r.train.loss << ',' << r.train.accuracy << ',' << r.test.loss << ','
                << r.test.accuracy << ',' << r.train.seconds << '\n';
        return out.str();
    }

    std::string path_;
    std::string earlier_rows_;  // of the epochs before a resumed run's first, as written
    std::vector<EpochRow> rows_;
};

}  // namespace example
