// CPU kernels of nero-ns's hash grid (nero_ns/components/hash_grid.py, built by hash_grid_cpu.py): features, their spatial derivative and the
// gradient of both with respect to the table, in one pass over each point's eight corners per level.
// Same table layout, level scalings and spatial hash as the PyTorch grid, so both give the same numbers.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kPrimeY = 2654435761LL;
constexpr int64_t kPrimeZ = 805459861LL;

// The eight corners of one point's cell at one level: table rows, trilinear weights and the weights' derivatives
// along x, y and z (in cells; the caller multiplies by the level's scaling). Corner index 4 x + 2 y + z.
struct Cell {
  int64_t rows[8];
  float weights[8];
  float slopes[3][8];
};

inline void locate(const float* point, float scaling, int64_t table_size, int64_t level_offset, Cell& cell) {
  int64_t lower[3];
  float frac[3];
  for (int axis = 0; axis < 3; ++axis) {
    const float scaled = point[axis] * scaling;
    const float floor_value = std::floor(scaled);
    lower[axis] = static_cast<int64_t>(floor_value);
    frac[axis] = scaled - floor_value;
  }
  const int64_t hx[2] = {lower[0], lower[0] + 1};
  const int64_t hy[2] = {lower[1] * kPrimeY, (lower[1] + 1) * kPrimeY};
  const int64_t hz[2] = {lower[2] * kPrimeZ, (lower[2] + 1) * kPrimeZ};
  const float wx[2] = {1.0f - frac[0], frac[0]};
  const float wy[2] = {1.0f - frac[1], frac[1]};
  const float wz[2] = {1.0f - frac[2], frac[2]};
  const float sign[2] = {-1.0f, 1.0f};
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      for (int k = 0; k < 2; ++k) {
        const int corner = 4 * i + 2 * j + k;
        cell.rows[corner] = ((hx[i] ^ hy[j] ^ hz[k]) & (table_size - 1)) + level_offset;
        cell.weights[corner] = wx[i] * wy[j] * wz[k];
        cell.slopes[0][corner] = sign[i] * wy[j] * wz[k];
        cell.slopes[1][corner] = wx[i] * sign[j] * wz[k];
        cell.slopes[2][corner] = wx[i] * wy[j] * sign[k];
      }
    }
  }
}

}  // namespace

// unit_cube (N, 3), table (L * T, F), scalings (L) -> features (N, L * F) and, with `with_jacobian`, their
// derivative along each axis of the unit cube (N, 3, L * F); otherwise an empty tensor. Levels from `active` on
// are zero.
std::vector<torch::Tensor> hash_grid_forward(torch::Tensor unit_cube, torch::Tensor table, torch::Tensor scalings,
                                             int64_t num_levels, int64_t active, bool with_jacobian) {
  const int64_t num_points = unit_cube.size(0);
  const int64_t num_features = table.size(1);
  const int64_t table_size = table.size(0) / num_levels;
  const int64_t width = num_levels * num_features;
  auto features = torch::zeros({num_points, width}, table.options());
  auto jacobian = with_jacobian ? torch::zeros({num_points, 3, width}, table.options()) : torch::empty({0}, table.options());
  const float* points = unit_cube.data_ptr<float>();
  const float* rows = table.data_ptr<float>();
  const float* scale = scalings.data_ptr<float>();
  float* out = features.data_ptr<float>();
  float* out_jacobian = with_jacobian ? jacobian.data_ptr<float>() : nullptr;
  at::parallel_for(0, num_points, 256, [&](int64_t begin, int64_t end) {
    Cell cell;
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t level = 0; level < active; ++level) {
        locate(points + 3 * n, scale[level], table_size, level * table_size, cell);
        for (int64_t f = 0; f < num_features; ++f) {
          float value = 0.0f, dx = 0.0f, dy = 0.0f, dz = 0.0f;
          for (int corner = 0; corner < 8; ++corner) {
            const float entry = rows[cell.rows[corner] * num_features + f];
            value += cell.weights[corner] * entry;
            dx += cell.slopes[0][corner] * entry;
            dy += cell.slopes[1][corner] * entry;
            dz += cell.slopes[2][corner] * entry;
          }
          const int64_t column = level * num_features + f;
          out[n * width + column] = value;
          if (out_jacobian != nullptr) {
            float* point_jacobian = out_jacobian + n * 3 * width + column;
            point_jacobian[0] = dx * scale[level];
            point_jacobian[width] = dy * scale[level];
            point_jacobian[2 * width] = dz * scale[level];
          }
        }
      }
    }
  });
  return {features, jacobian};
}

// Gradient of the table from the gradients of the features (N, L * F) and of their derivative (N, 3, L * F, or an
// empty tensor). Threads split the levels: each level owns its rows of the table, so no two threads add to one row,
// and the sum over points runs in a fixed order (the same result on every run).
torch::Tensor hash_grid_backward(torch::Tensor unit_cube, torch::Tensor scalings, torch::Tensor grad_features,
                                 torch::Tensor grad_jacobian, int64_t table_rows, int64_t num_levels, int64_t active) {
  const int64_t num_points = unit_cube.size(0);
  const int64_t width = grad_features.size(1);
  const int64_t num_features = width / num_levels;
  const int64_t table_size = table_rows / num_levels;
  auto grad_table = torch::zeros({table_rows, num_features}, grad_features.options());
  const float* points = unit_cube.data_ptr<float>();
  const float* scale = scalings.data_ptr<float>();
  const float* grad_out = grad_features.data_ptr<float>();
  const float* grad_jac = grad_jacobian.numel() > 0 ? grad_jacobian.data_ptr<float>() : nullptr;
  float* grad_rows = grad_table.data_ptr<float>();
  at::parallel_for(0, active, 1, [&](int64_t begin, int64_t end) {
    Cell cell;
    for (int64_t level = begin; level < end; ++level) {
      for (int64_t n = 0; n < num_points; ++n) {
        locate(points + 3 * n, scale[level], table_size, level * table_size, cell);
        for (int64_t f = 0; f < num_features; ++f) {
          const int64_t column = level * num_features + f;
          const float g_value = grad_out[n * width + column];
          float g_dx = 0.0f, g_dy = 0.0f, g_dz = 0.0f;
          if (grad_jac != nullptr) {
            const float* point_grad = grad_jac + n * 3 * width + column;
            g_dx = point_grad[0] * scale[level];
            g_dy = point_grad[width] * scale[level];
            g_dz = point_grad[2 * width] * scale[level];
          }
          for (int corner = 0; corner < 8; ++corner) {
            grad_rows[cell.rows[corner] * num_features + f] += cell.weights[corner] * g_value
                + cell.slopes[0][corner] * g_dx + cell.slopes[1][corner] * g_dy + cell.slopes[2][corner] * g_dz;
          }
        }
      }
    }
  });
  return grad_table;
}

// The threads at::parallel_for runs `tasks` one-task chunks on: what the loops above get (1 in a build without
// OpenMP, whose parallel_for runs serially).
int64_t threads_used(int64_t tasks) {
  std::vector<int64_t> thread_of_task(tasks, 0);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) thread_of_task[task] = at::get_thread_num();
  });
  std::sort(thread_of_task.begin(), thread_of_task.end());
  return std::unique(thread_of_task.begin(), thread_of_task.end()) - thread_of_task.begin();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &hash_grid_forward, "hash grid features (and their spatial derivative) on the CPU");
  m.def("backward", &hash_grid_backward, "gradient of the hash table on the CPU");
  m.def("threads_used", &threads_used, "threads the kernel's parallel loops run on");
}
