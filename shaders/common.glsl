// common.glsl: shared by every kernel. Workgroup size comes from specialisation constants
// 0, 1, 2; linear workgroup ids from a 2-D grid (see at_encoder_grid in engine/tensor/at-graph.c).
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

uint linear_group() {
  return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

uint linear_invocation() {
  return linear_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
}

// f16 and bf16 are stored two per 32-bit word (the plain path: no 16-bit storage needed).
float half_at(uint word, uint i) {
  return unpackHalf2x16(word)[i & 1u];
}

// Four halves from two words (a RG32UI texel, or half of a RGBA32UI one).
vec4 halves4(uvec2 w) {
  return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
}

float bf16_at(uint word, uint i) {
  return uintBitsToFloat((i & 1u) == 0u ? (word << 16) : (word & 0xffff0000u));
}

// GELU, erf form: 0.5 x erfc(-x / sqrt 2). erfc from the Chebyshev fit in Numerical Recipes
// (fractional error < 1.2e-7 everywhere), so the negative tail, where 1 + erf(z) would cancel,
// keeps its relative accuracy. For float and vec4 (GELU_ERF_DEFINE instantiates one type).
#define GELU_ERF_DEFINE(T)                                                                         \
  T gelu_erf(T x) {                                                                                \
    T z = abs(x) * 0.7071067812;                                                                   \
    T t = 1.0 / (1.0 + 0.5 * z);                                                                   \
    T r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418      \
          + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587              \
          + t * (-0.82215223 + t * 0.17087277)))))))));                                          \
    /* r = erfc(|x| / sqrt 2); erfc(-x / sqrt 2) is r for x < 0 and 2 - r otherwise */             \
    T pos = step(T(0.0), x);                                                                       \
    return 0.5 * x * (2.0 * pos + r * (1.0 - 2.0 * pos));                                         \
  }
GELU_ERF_DEFINE(float)
GELU_ERF_DEFINE(vec4)

// Unpack four coordinates of linear index `i` in a contiguous [n0, n1, n2, n3] shape.
uvec4 unravel4(uint i, uvec4 n) {
  uint i3 = i % n.w;
  i /= n.w;
  uint i2 = i % n.z;
  i /= n.z;
  uint i1 = i % n.y;
  return uvec4(i / n.y, i1, i2, i3);
}
