// A data-parallel run that breaks one rank on purpose, for faults.sh:
//   fault_run --save DIR --fault throw|kill|hang --rank R --epoch E --step S
// trains the Iris MLP with DataParallel, rank 0 checkpointing after every epoch, and at
// step S of epoch E rank R throws, kills itself (SIGKILL, as the OOM killer would) or hangs.
//   fault_run --check DIR      loads the checkpoint and prints its epoch.

#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "nn/data/csv.hpp"
#include "nn/io/model_checkpoint.hpp"
#include "../sharded_training.hpp"

int main(int argc, char** argv) {
    std::string save, check, fault = "none";
    int fault_rank = 1;
    std::size_t fault_epoch = 2, fault_step = 3, epochs = 4;
    CLI::App app{"data-parallel run with an injected fault"};
    app.add_option("--save", save);
    app.add_option("--check", check);
    app.add_option("--fault", fault)->check(CLI::IsMember({"none", "throw", "kill", "hang"}));
    app.add_option("--rank", fault_rank);
    app.add_option("--epoch", fault_epoch);
    app.add_option("--step", fault_step);
    app.add_option("--epochs", epochs);
    CLI11_PARSE(app, argc, argv);

    if (!check.empty()) {
        const nn::LoadedModel<double> loaded = nn::load_model<double>(check);
        std::printf("checkpoint loads: epoch %zu, %zu layers\n", loaded.epoch, loaded.net->layers.size());
        return 0;
    }
    nn::distributed::Communicator comm(argc, argv);
    const nn::DataLoader<double> iris(nn::iris<double>());
    nn::MLP<double> net({4, 16, 8, 3}, nn::Activation::relu, nn::Init::he, 7);
    nn::Adam<double> opt(net.parameters(), 1e-2);
    nn::distributed::DataParallel<double> ddp(comm, net.parameters(), 256);
    test_support::train_sharded(net, opt, iris, 13, 3, epochs, &ddp, [&](test_support::StepPlace at) {
        if (at.step == 0 && at.epoch > 0 && comm.is_root()) nn::save_model(save, net, opt, at.epoch);
        if (comm.rank() != fault_rank || at.epoch != fault_epoch || at.step != fault_step) return;
        std::fprintf(stderr, "fault_run: rank %d: injecting '%s' at epoch %zu step %zu\n", comm.rank(),
                     fault.c_str(), at.epoch, at.step);
        if (fault == "throw") throw std::runtime_error("injected fault");
        if (fault == "kill") std::raise(SIGKILL);
        if (fault == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
    });
    if (comm.is_root()) nn::save_model(save, net, opt, epochs);
    return 0;
}
