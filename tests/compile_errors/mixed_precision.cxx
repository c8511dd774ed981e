// Must NOT compile: a float handle combined with a double handle. The test (tests/CMakeLists.txt,
// "compile_errors: mixed precision") checks that the compiler stops with tapegrad's own
// static_assert message instead of pages of failed template deductions.
#include "autodiff/autodiff.hpp"

int main() {
    autodiff::Tape<float> tf;
    autodiff::Tape<double> td;
    auto a = tf.leaf(autodiff::Matrix<float>({{1.0f}}));
    auto b = td.leaf(autodiff::Matrix<double>({{1.0}}));
    auto c = a + b;
    (void)c;
}
