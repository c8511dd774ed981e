// docs/guide.md, example 6: a recurrent model. A character-level LSTM (nn::Embedding ->
// nn::LSTM -> nn::Linear, a module of our own) learns a verse by predicting each next
// character, with a training loop of our own: a batch of windows of the text recorded step
// by step on one tape, backward() through time, gradient clipping, Adam. Then, under
// NoGrad, it recites the verse from its first word, one character at a time.
// Exits 1 unless the recitation is the verse.

#include <cstdio>
#include <string>
#include <vector>

#include "nn/embedding.hpp"
#include "nn/linear.hpp"
#include "nn/lstm.hpp"
#include "nn/optimizers.hpp"

using autodiff::Var;

const std::string verse =
    "Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\n"
    "Like a diamond in the sky.\n";

struct CharModel : nn::Module<double> {
    nn::Embedding<double> embed;
    nn::LSTM<double> lstm;
    nn::Linear<double> head;
    CharModel(std::size_t vocabulary, std::size_t hidden)
        : embed(vocabulary, 16, 1), lstm(16, hidden, 1, 2), head(hidden, vocabulary, 3, nn::Init::glorot) {
        register_modules({{"embed", embed}, {"lstm", lstm}, {"head", head}});
    }
    // Logits (vocabulary x m) after each step of `ids` (one list of m characters per step),
    // from `state`, which is left as it is after the last step.
    std::vector<Var<double>> operator()(autodiff::Tape<double>& tape, const std::vector<autodiff::Labels>& ids,
                                        std::vector<nn::LSTMState<double>>& state) {
        std::vector<Var<double>> xs;
        for (const autodiff::Labels& step : ids) xs.push_back(embed(tape, step));
        std::vector<Var<double>> logits;
        for (const Var<double>& h : lstm(xs, state)) logits.push_back(head(h));
        return logits;
    }
};

int main() {
    std::string alphabet;  // the verse's characters, each once: a character's id is its index
    for (char ch : verse)
        if (alphabet.find(ch) == std::string::npos) alphabet += ch;
    auto id = [&](char ch) { return alphabet.find(ch); };
    CharModel model(alphabet.size(), 64);
    nn::Adam<double> adam(model.parameters(), 0.01);

    const std::size_t window = 24, batch = 8;
    nn::NumpyRandom rng(0);
    autodiff::Tape<double> tape;
    for (int step = 1; step <= 300; ++step) {
        // `batch` windows of the verse at random offsets: inputs[t] holds each window's t-th
        // character, targets[t] the one after it.
        std::vector<autodiff::Labels> inputs(window, autodiff::Labels(batch)), targets = inputs;
        const std::vector<std::int64_t> offsets = rng.randint(0, std::int64_t(verse.size() - window), batch);
        for (std::size_t b = 0; b < batch; ++b) {
            const std::size_t offset = std::size_t(offsets[b]);
            for (std::size_t t = 0; t < window; ++t) {
                inputs[t][b] = id(verse[offset + t]);
                targets[t][b] = id(verse[offset + t + 1]);
            }
        }
        tape.reset();
        std::vector<nn::LSTMState<double>> state = model.lstm.zero_state(tape, batch);
        const std::vector<Var<double>> logits = model(tape, inputs, state);
        Var<double> loss = autodiff::softmax_cross_entropy(logits[0], targets[0]);
        for (std::size_t t = 1; t < window; ++t) loss = loss + autodiff::softmax_cross_entropy(logits[t], targets[t]);
        loss = loss * (1.0 / double(window));  // the mean over the window's characters
        tape.backward(loss);
        nn::clip_grad_norm(model.parameters(), 1.0);
        adam.step_and_zero_grad();
        if (step % 100 == 0) std::printf("step %3d: loss per character %.4f\n", step, loss.value()(0, 0));
    }

    // Recite: feed "Twinkle" one character at a time, then each predicted character back in.
    // Under NoGrad the tape keeps only what the handles still refer to: the last state.
    std::string recited = "Twinkle";
    {
        autodiff::NoGrad<double> no_grad(tape);
        tape.reset();
        std::vector<nn::LSTMState<double>> state = model.lstm.zero_state(tape, 1);
        std::size_t next = id(recited[0]);
        for (std::size_t k = 0; recited.size() < verse.size(); ++k) {
            const Var<double> logits = model(tape, {{next}}, state).back();
            if (k + 1 < std::string("Twinkle").size()) {
                next = id(recited[k + 1]);  // still reading the prompt
                continue;
            }
            const autodiff::Matrix<double>& z = logits.value();
            next = std::size_t(std::max_element(z.begin(), z.end()) - z.begin());
            recited += alphabet[next];
        }
    }
    std::printf("recited:\n%s", recited.c_str());
    return recited == verse ? 0 : 1;
}
