#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "nn/data/csv.hpp"
#include "nn/data_error.hpp"
#include "nn/data/dataset.hpp"
#include "../temp_dir.hpp"

using Catch::Matchers::Contains;
using test_support::TempDir;

namespace {

nn::Dataset<double> parse(const std::string& text) {
    std::istringstream in(text);
    return nn::parse_csv_dataset<double>(in, "mem.csv");
}

}  // namespace

TEST_CASE("CSV: header, named classes in order of first appearance", "[csv]") {
    const auto d = parse("x, y ,class\r\n1,2,dog\r\n\r\n3,-4.5e1,cat\r\n+5,6,dog\r\n");
    REQUIRE(d.features.shape(0) == 2);
    REQUIRE(d.features.shape(1) == 3);
    CHECK(d.features(0, 2) == 5.0);
    CHECK(d.features(1, 1) == -45.0);
    CHECK(d.labels == std::vector<std::size_t>{0, 1, 0});
    CHECK(d.classes == 2);
    CHECK(d.class_names == std::vector<std::string>{"dog", "cat"});
}

TEST_CASE("CSV: no header, integer classes are the class indices", "[csv]") {
    const auto d = parse("0.5,2\n1.5,0\n");
    CHECK(d.features.shape(0) == 1);
    CHECK(d.labels == std::vector<std::size_t>{2, 0});
    CHECK(d.classes == 3);
    CHECK(d.class_names == std::vector<std::string>{"0", "1", "2"});
}

TEST_CASE("CSV: a file on disk loads through the same parser", "[csv]") {
    TempDir tmp("csv");
    const auto d = nn::load_csv_dataset<float>(tmp.write("a.csv", "a,b\n1,x\n2,y\n"));
    CHECK(d.features(0, 1) == 2.0f);
    CHECK(d.class_names == std::vector<std::string>{"x", "y"});
}

TEST_CASE("CSV errors name the file and the line", "[csv]") {
    CHECK_THROWS_WITH(parse("a,b,c\n1,2,x\n1,zz,y\n"),
                      Contains("mem.csv:3:") && Contains("column 2") && Contains("'zz'") &&
                          Contains("not a number"));
    CHECK_THROWS_WITH(parse("1,2,x\n1,2\n"), Contains("mem.csv:2:") && Contains("expected 3 columns") &&
                                                 Contains("found 2"));
    CHECK_THROWS_WITH(parse("1,2,x\nnan,2,x\n"), Contains("mem.csv:2:") && Contains("not a finite"));
    CHECK_THROWS_WITH(parse("1,-inf,x\n"), Contains("mem.csv:1:") && Contains("not a finite"));
    CHECK_THROWS_WITH(parse("1e999,1,x\n"), Contains("mem.csv:1:") && Contains("not a finite"));
    CHECK_THROWS_WITH(parse("1,2,\n"), Contains("mem.csv:1:") && Contains("class"));
    CHECK_THROWS_WITH(parse(""), Contains("mem.csv") && Contains("empty file"));
    CHECK_THROWS_WITH(parse("\n  \n"), Contains("mem.csv") && Contains("empty file"));
    CHECK_THROWS_WITH(parse("a,b,class\n"), Contains("mem.csv") && Contains("no data rows after the header"));
    CHECK_THROWS_WITH(parse("justone\n"), Contains("mem.csv:1:") && Contains("class column"));
    CHECK_THROWS_AS(parse("1,2,x\n1,zz,y\n"), nn::DataError);

    std::istringstream big("1,2,x\n1e39,0,y\n");  // finite as double, not as float
    CHECK_THROWS_WITH(nn::parse_csv_dataset<float>(big, "f.csv"), Contains("f.csv:2:") && Contains("finite"));

    TempDir tmp("csv");
    const auto missing = tmp.file("missing.csv");
    CHECK_THROWS_WITH(nn::load_csv_dataset<double>(missing), Contains(missing));
}

TEST_CASE("CSV: a number too small for a double is 0 as strtod and NumPy read it", "[csv]") {
    // Found by an attack: from_chars says "out of range" at both ends, and 1e-400 was refused
    // as "not a finite number (NaN and Inf are not data)".
    const auto d = parse("1e-400,2,x\n-2.5e-4000,1e-320,y\n");
    CHECK(d.features(0, 0) == 0.0);
    CHECK_FALSE(std::signbit(d.features(0, 0)));
    CHECK(d.features(0, 1) == 0.0);
    CHECK(std::signbit(d.features(0, 1)));
    CHECK(d.features(1, 1) == 1e-320);
    CHECK_THROWS_WITH(parse("1,2,x\n1e4000,1,y\n"), Contains("mem.csv:2:") && Contains("'1e4000' is not a finite"));
}

TEST_CASE("Iris is compiled in: 150 examples, 4 features, 3 classes", "[csv][iris]") {
    const auto iris = nn::iris<double>();
    REQUIRE(iris.features.shape(0) == 4);
    REQUIRE(iris.features.shape(1) == 150);
    CHECK(iris.classes == 3);
    CHECK(iris.class_names == std::vector<std::string>{"setosa", "versicolor", "virginica"});
    CHECK(iris.features(0, 0) == 5.1);
    CHECK(iris.features(3, 149) == 1.8);
    std::vector<int> per_class(3);
    for (auto k : iris.labels) ++per_class.at(k);
    CHECK(per_class == std::vector<int>{50, 50, 50});
    CHECK(nn::iris<float>().features(2, 50) == 4.7f);
}

TEST_CASE("gather_batch copies columns and reuses right-sized buffers", "[dataset]") {
    const auto iris = nn::iris<float>();
    const std::size_t idx[] = {149, 0, 50};
    xt::xtensor<float, 2> X;
    std::vector<std::size_t> y;
    nn::gather_batch(iris, idx, 3, X, y);
    REQUIRE(X.shape(0) == 4);
    REQUIRE(X.shape(1) == 3);
    CHECK(X(0, 0) == iris.features(0, 149));
    CHECK(X(3, 1) == iris.features(3, 0));
    CHECK(X(2, 2) == iris.features(2, 50));
    CHECK(y == std::vector<std::size_t>{2, 0, 1});

    const float* buffer = X.data();
    const std::size_t* label_buffer = y.data();
    const std::size_t next[] = {1, 2, 3};
    nn::gather_batch(iris, next, 3, X, y);
    CHECK(X.data() == buffer);  // same storage: no reallocation in steady state
    CHECK(y.data() == label_buffer);
    CHECK(X(0, 2) == iris.features(0, 3));

    const std::size_t bad[] = {150};
    CHECK_THROWS_AS(nn::gather_batch(iris, bad, 1, X, y), autodiff::Error);
}

TEST_CASE("CSV: a header row of numbers above integer labels is a header, not an example", "[csv][header]") {
    // Pixel columns named by number, as many exports name them.
    const auto d = parse("0,1,2,label\n0.5,0.25,1,3\n0,1,0.5,1\n");
    CHECK(d.features.shape(1) == 2);
    CHECK(d.labels == std::vector<std::size_t>{3, 1});
    CHECK(d.classes == 4);
    // scikit-learn's iris.csv: "150,4,setosa,versicolor,virginica" above integer labels.
    const auto iris = parse("3,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n4.9,3,1.4,0.2,1\n7,3.2,4.7,1.4,2\n");
    CHECK(iris.features.shape(1) == 3);
    CHECK(iris.labels == std::vector<std::size_t>{0, 1, 2});
}

// Found by an attack: a first example whose class is a name above integer classes was dropped
// as a header although its features are measurements, not column names.
TEST_CASE("CSV: a first row of measurements whose class is a name is an example, not a header", "[csv][header]") {
    const auto d = parse("5.1,3.5,cat\n4.9,3.0,0\n4.7,3.2,1\n");
    CHECK(d.features.shape(1) == 3);
    CHECK(d.class_names == std::vector<std::string>{"cat", "0", "1"});  // a file mixing '1' and 'cat': names throughout
    CHECK(d.labels == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("CSV: an integer label out of range is refused whatever its number of digits", "[csv][labels]") {
    CHECK_THROWS_WITH(parse("1,0\n2,4000000000\n"), Contains("mem.csv") && Contains("4000000000") &&
                                                        Contains("larger than"));
    CHECK_THROWS_WITH(parse("1,0\n2,99999999999999999999\n"),
                      Contains("mem.csv") && Contains("99999999999999999999") && Contains("larger than"));
}

TEST_CASE("CSV: a quoted field is refused, naming the line and the column", "[csv][quotes]") {
    // Read as text, "1" and "0" became class names with the quotes in them, renumbered.
    CHECK_THROWS_WITH(parse("1,\"1\"\n2,\"0\"\n3,\"1\"\n"),
                      Contains("mem.csv:1: column 2") && Contains("quoted fields are not supported"));
    CHECK_THROWS_WITH(parse("x,class\n\"1,5\",a\n"),
                      Contains("mem.csv:2: column 1") && Contains("quoted fields are not supported"));
    CHECK_THROWS_WITH(parse("\"x\",class\n1,a\n"),
                      Contains("mem.csv:1: column 1") && Contains("quoted fields are not supported"));
}

TEST_CASE("CSV: a UTF-8 byte order mark at the start of the file is skipped", "[csv][bom]") {
    // Before, the mark made the first example's first field "not a number", so the example
    // was taken for a header and silently dropped.
    const auto d = parse("\xEF\xBB\xBF" "1.5,0\n2,1\n");
    REQUIRE(d.features.shape(1) == 2);
    CHECK(d.features(0, 0) == 1.5);
    CHECK(d.labels == std::vector<std::size_t>{0, 1});
    const auto with_header = parse("\xEF\xBB\xBFx,class\n1,0\n");
    CHECK(with_header.features.shape(1) == 1);
}
