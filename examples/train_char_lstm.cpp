// A character-level language model: a stacked LSTM reads a text one character at a time and
// learns to predict the next, trained by truncated backpropagation through time, then writes
// a sample of its own.
//
//   ./build/examples/train_char_lstm                          # a short text compiled in
//   ./build/examples/train_char_lstm --text book.txt --hidden 128 --layers 2 --epochs 5
//
// docs/examples/char_lstm.cpp is the same kind of model in a page of the guide; this is the
// program to run on a text of your own.
//
// The model is a user's own nn::Module (an nn::LSTM and an nn::Linear head), as first-class as
// nn::MLP. The text is cut into --batch streams read side by side (a column each); a window of
// --steps characters is one tape: every step's input is a one-hot column block read in place
// (Tape::constant_ref), the loss is the mean over steps of softmax_cross_entropy, and the
// state at the window's end starts the next window (its values, not its gradient).
// The first window is recorded; every later one is replayed (autodiff::Replay): new inputs
// and labels, the same entries run again without being recorded, the same gradients bit for
// bit (--no-replay records every window afresh, to compare: it prints the same losses).

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/allocate.hpp"
#include "nn/linear.hpp"
#include "nn/lstm.hpp"
#include "nn/optimizers.hpp"
#include "support/guarded_main.hpp"
#include "support/training_run.hpp"

using autodiff::Matrix;
using autodiff::Tape;
using autodiff::Var;

namespace {

// Written for this example (so it needs no file): short, with enough repetition to learn.
const char* const built_in_text =
    "The tape remembers every step. Forward, each op writes its value on the tape; backward, the "
    "tape is read from the end, and every step hands its gradient to the steps it read. The tape "
    "forgets nothing and repeats nothing: one sweep, and every parameter has its gradient. "
    "A recurrent model writes a long tape: one step per character, and every step the same "
    "cell. The cell reads the character and the state it was left, and leaves a new state for "
    "the next character. Backward, the gradient flows through time, from the last character "
    "to the first. A window of the text is one tape; the state at its end starts the next "
    "window. The first window is recorded, and every later window is replayed: the same steps, "
    "new characters, the same gradients. The tape remembers every step.\n";

struct Options {
    std::string text;
    std::size_t hidden = 96, layers = 1, steps = 24, batch = 4, epochs = 100, sample = 200;
    double learning_rate = 0.01, clip = 5.0;
    std::uint32_t seed = 0;
    bool replay = true;
};

// A file of at most this many bytes: the example keeps it, one-hot, a window at a time.
constexpr std::uintmax_t max_text_bytes = std::uintmax_t(64) << 20;

std::string read_text(const std::string& path) {
    // Asked before opening: a FIFO would block the open, a directory opens as a stream too.
    std::error_code error;
    const std::filesystem::file_status status = std::filesystem::status(path, error);
    if (error) throw std::runtime_error("--text " + path + ": " + error.message());
    if (!std::filesystem::is_regular_file(status)) throw std::runtime_error("--text " + path + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("--text " + path + ": " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) throw std::runtime_error("--text " + path + ": cannot tell its size (is it a regular file?)");
    if (std::uintmax_t(size) > max_text_bytes)
        throw std::runtime_error("--text " + path + ": " + std::to_string(size) + " bytes, more than this example reads (" +
                                 std::to_string(max_text_bytes) + ")");
    std::string text(static_cast<std::size_t>(size), '\0');
    in.seekg(0);
    if (!in.read(text.data(), size)) throw std::runtime_error("--text " + path + ": read failed");
    return text;
}

// The characters of the text (its distinct bytes, in byte order) and the text as their ids:
// a byte each (at most 256 characters), so a 64 MiB text takes 64 MiB again, not eight times that.
struct Corpus {
    std::vector<unsigned char> alphabet;
    std::vector<std::uint8_t> ids;
};

Corpus encode(const std::string& text) {
    Corpus c;
    std::vector<std::size_t> id_of(256, SIZE_MAX);
    for (unsigned char ch : text) id_of[ch] = 0;
    for (std::size_t b = 0; b < 256; ++b)
        if (id_of[b] == 0) id_of[b] = c.alphabet.size(), c.alphabet.push_back(static_cast<unsigned char>(b));
    c.ids.reserve(text.size());
    for (unsigned char ch : text) c.ids.push_back(static_cast<std::uint8_t>(id_of[ch]));
    return c;
}

// The user's model: an LSTM over one-hot characters and a linear head to the next one's logits.
template <class T>
class CharModel : public nn::Module<T> {
public:
    CharModel(std::size_t vocabulary, const Options& o)
        : lstm(vocabulary, o.hidden, o.layers, o.seed), head(o.hidden, vocabulary, o.seed + 1, nn::Init::glorot) {
        this->register_modules({{"lstm", lstm}, {"head", head}});
    }
    std::string type() const override { return "CharModel"; }

    nn::LSTM<T> lstm;
    nn::Linear<T> head;
};

// One window on its own tape: the inputs the tape reads in place, the state carried in, and
// what the replay keeps readable (the state at the window's end).
template <class T>
class Window {
public:
    Window(CharModel<T>& model, std::size_t vocabulary, const Options& o)
        : model_(model), x_(o.steps, Matrix<T>({vocabulary, o.batch}, T(0))), labels_(o.steps, autodiff::Labels(o.batch)),
          h0_(o.layers, Matrix<T>({o.hidden, o.batch}, T(0))), c0_(h0_), replay_wanted_(o.replay) {}

    // The state carried into the next window: zero at each epoch's start.
    void clear_state() {
        for (auto* m : {&h0_, &c0_})
            for (Matrix<T>& s : *m) s.fill(T(0));
    }

    // Window `w` of each stream (stream s starts at s * stream_length): the loss, with the
    // parameters' gradients accumulated.
    T run(const std::vector<std::uint8_t>& ids, std::size_t stream_length, std::size_t w) {
        const std::size_t steps = x_.size(), streams = labels_[0].size();
        for (std::size_t t = 0; t < steps; ++t) {
            x_[t].fill(T(0));
            for (std::size_t s = 0; s < streams; ++s) {
                const std::size_t at = s * stream_length + w * steps + t;
                x_[t](ids[at], s) = T(1);
                labels_[t][s] = ids[at + 1];
            }
        }
        T loss;
        if (replay_) {
            for (std::size_t t = 0; t < steps; ++t) replay_->set_labels(losses_[t], labels_[t]);
            loss = replay_->run();
        } else {
            const Var<T> total = record();
            tape_.backward(total);
            loss = total.value()(0, 0);
            if (replay_wanted_) replay_ = std::make_unique<autodiff::Replay<T>>(tape_, total, kept_);
        }
        for (std::size_t l = 0; l < h0_.size(); ++l) {  // the state's values start the next window
            // Copied into the matrices the tape reads in place, which stay where they are.
            std::copy(kept_[2 * l].value().begin(), kept_[2 * l].value().end(), h0_[l].begin());
            std::copy(kept_[2 * l + 1].value().begin(), kept_[2 * l + 1].value().end(), c0_[l].begin());
        }
        return loss;
    }

private:
    Var<T> record() {
        tape_.reset();
        std::vector<nn::LSTMState<T>> state;
        for (std::size_t l = 0; l < h0_.size(); ++l) state.push_back({tape_.constant_ref(h0_[l]), tape_.constant_ref(c0_[l])});
        std::vector<Var<T>> xs;
        for (const Matrix<T>& x : x_) xs.push_back(tape_.constant_ref(x));
        const std::vector<Var<T>> hs = model_.lstm(xs, state);
        losses_.clear();
        Var<T> total;
        for (std::size_t t = 0; t < hs.size(); ++t) {
            losses_.push_back(softmax_cross_entropy(model_.head(hs[t]), labels_[t]));
            total = t == 0 ? losses_[t] : total + losses_[t];
        }
        kept_.clear();
        for (const nn::LSTMState<T>& s : state) kept_.insert(kept_.end(), {s.h, s.c});
        return scale(total, T(1) / T(hs.size()));
    }

    CharModel<T>& model_;
    std::vector<Matrix<T>> x_;  // per step: vocabulary x streams, one-hot
    std::vector<autodiff::Labels> labels_;
    std::vector<Matrix<T>> h0_, c0_;  // per layer
    bool replay_wanted_;
    Tape<T> tape_;
    std::vector<Var<T>> losses_, kept_;  // per step; per layer h and c at the window's end
    std::unique_ptr<autodiff::Replay<T>> replay_;
};

// `count` characters drawn one at a time from the model's softmax, after reading `prompt`.
template <class T>
std::string sample(CharModel<T>& model, const Corpus& corpus, std::size_t prompt, std::size_t count, std::uint32_t seed) {
    const std::size_t vocabulary = corpus.alphabet.size(), layers = model.lstm.layers.size();
    std::vector<Matrix<T>> h(layers, Matrix<T>({model.lstm.n_hidden(), std::size_t(1)}, T(0))), c(h);
    std::mt19937 rng(seed);
    std::string out;
    Tape<T> tape;
    std::size_t id = prompt;
    for (std::size_t k = 0; k < count; ++k) {
        tape.reset();
        autodiff::NoGrad<T> no_grad(tape);
        std::vector<nn::LSTMState<T>> state;
        for (std::size_t l = 0; l < layers; ++l) state.push_back({tape.constant(h[l]), tape.constant(c[l])});
        Matrix<T> x({vocabulary, std::size_t(1)}, T(0));
        x(id, 0) = T(1);
        const std::vector<Var<T>> hs = model.lstm({tape.constant(x)}, state);
        const Matrix<T> p = softmax(model.head(hs[0])).value();
        // A model whose numbers overflowed (a last step too large: the loss checked before it
        // was finite) gives NaN probabilities, which std::discrete_distribution may not take:
        // the sample came out as newlines, with exit status 0 (found by an attack).
        for (std::size_t k = 0; k < p.size(); ++k)
            if (!std::isfinite(p.data()[k]))
                throw std::runtime_error("the sample: the model's next-character probabilities are not finite (" +
                                         std::to_string(p.data()[k]) + " after " + std::to_string(k) +
                                         " characters of the sample): its weights grew too large in training; try a lower --lr");
        for (std::size_t l = 0; l < layers; ++l) h[l] = state[l].h.value(), c[l] = state[l].c.value();
        std::discrete_distribution<std::size_t> next(p.begin(), p.end());
        id = next(rng);
        out.push_back(static_cast<char>(corpus.alphabet[id]));
    }
    return out;
}

// The text as a terminal shows it safely: a byte that is not printable ASCII (an escape
// sequence's ESC, a NUL that would end the string) as \xNN; new lines and tabs as they are.
std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char ch : text) {
        if ((ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t') {
            out.push_back(static_cast<char>(ch));
        } else {
            char escaped[5];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", ch);
            out += escaped;
        }
    }
    return out;
}

int run(const Options& o) {
    using T = float;
    const Corpus corpus = encode(o.text.empty() ? std::string(built_in_text) : read_text(o.text));
    const std::size_t vocabulary = corpus.alphabet.size();
    // The model's numbers, each with its gradient, Adam's two moments and room for the copies a
    // step makes (its resident size measured at 3.5 times the numbers' bytes), and what a
    // window's tape holds per step: both checked before anything is made (Linux would kill the
    // process that ran out, not throw).
    const std::size_t numbers = 4 * o.hidden * (vocabulary + o.hidden + 2) +
                                (o.layers - 1) * 4 * o.hidden * (2 * o.hidden + 2) + (o.hidden + 1) * vocabulary;
    nn::require_fits_in_memory("the model (--hidden " + std::to_string(o.hidden) + ", --layers " + std::to_string(o.layers) + ")",
                               numbers, 5 * sizeof(T));
    // What a window's tape holds per step, at least: the one-hot input, each layer's gates, states
    // and their gradients, the head's logits and theirs.
    const std::size_t per_step = (3 * vocabulary + 32 * o.layers * o.hidden) * o.batch * sizeof(T);
    nn::require_fits_in_memory("a window of --steps " + std::to_string(o.steps) + " characters",
                               o.steps, per_step);
    // Each stream needs a window and the character after it.
    const std::size_t stream_length = corpus.ids.size() / o.batch;
    if (stream_length < o.steps + 1)
        throw std::runtime_error("the text has " + std::to_string(corpus.ids.size()) + " characters: " +
                                 std::to_string(o.batch) + " streams of --steps " + std::to_string(o.steps) +
                                 " need at least " + std::to_string(o.batch * (o.steps + 1)));
    const std::size_t windows = (stream_length - 1) / o.steps;
    std::printf("%zu characters (%zu distinct), %zu streams, %zu windows of %zu steps per epoch%s\n", corpus.ids.size(),
                vocabulary, o.batch, windows, o.steps, o.replay ? ", replayed" : "");

    CharModel<T> model(vocabulary, o);
    // Refused unless positive and finite as a float: 1e-50 was refused by Adam as "got 0", a
    // rate nobody gave (found by an attack; train_mlp and train_cnn check theirs so).
    nn::Adam<T> optimizer(model.parameters(), example::learning_rate_as<T>(o.learning_rate));
    Window<T> window(model, vocabulary, o);
    for (std::size_t epoch = 1; epoch <= o.epochs; ++epoch) {
        const auto start = std::chrono::steady_clock::now();
        window.clear_state();
        double total = 0;
        for (std::size_t w = 0; w < windows; ++w) {
            const T loss = window.run(corpus.ids, stream_length, w);
            if (!std::isfinite(loss))
                throw std::runtime_error("epoch " + std::to_string(epoch) + ", window " + std::to_string(w + 1) +
                                         ": the loss is not finite (" + std::to_string(loss) + "): try a lower --lr");
            nn::clip_grad_norm(model.parameters(), o.clip);
            optimizer.step();
            optimizer.zero_grad();
            total += loss;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("epoch %zu: loss %.9g nats per character, %.3f s\n", epoch, total / double(windows), seconds);
    }
    if (o.sample > 0) std::printf("sample: %s\n", printable(sample(model, corpus, corpus.ids[0], o.sample, o.seed)).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"Train a character-level LSTM language model with tapegrad and sample from it."};
    app.add_option("--text", o.text, "a text file to learn (default: a short text compiled in)");
    app.add_option("--hidden", o.hidden, "units of each LSTM layer")->check(CLI::Range(1, 1 << 16))->capture_default_str();
    app.add_option("--layers", o.layers, "LSTM layers")->check(CLI::Range(1, 16))->capture_default_str();
    app.add_option("--steps", o.steps, "characters per window (the length of backpropagation through time)")
        ->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--batch", o.batch, "streams of the text read side by side")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--epochs", o.epochs, "passes over the text")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--lr", o.learning_rate, "Adam's learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--clip", o.clip, "largest gradient norm (clip_grad_norm)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the initial weights and of the sample")->capture_default_str();
    app.add_option("--sample", o.sample, "characters to write after training (0: none)")
        ->check(CLI::Range(0, 1 << 20))->capture_default_str();
    bool no_replay = false;
    app.add_flag("--no-replay", no_replay, "record every window afresh instead of replaying the first");
    CLI11_PARSE(app, argc, argv);
    o.replay = !no_replay;
    if (!std::isfinite(o.learning_rate) || !std::isfinite(o.clip)) {
        std::fprintf(stderr, "train_char_lstm: --lr and --clip must be finite numbers\n");
        return 2;
    }
    return example::guarded_main("train_char_lstm", [&] { return run(o); });
}
