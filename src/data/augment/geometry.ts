// The geometric transforms of a sample (flip, rotation, resized crop, affine) as one composed
// affine map, and the batch resampled through those maps in one gridSample.
import * as torch from '../../torch/index.js';
import type { Interpolation } from './config.js';
import type { SampleParams } from './params.js';

// 2x3 affine maps [a, b, c, d, e, f]: (u, v) -> (a u + b v + c, d u + e v + f), in pixel units
// centred on the image centre, y down. Each transform is described by its backward map (output
// pixel -> where it reads in its input), so a pipeline t1, t2, ..., tk reads the source at
// B1(B2(...Bk(p))).
type Affine = readonly [number, number, number, number, number, number];

function compose(m: Affine, n: Affine): Affine {
  return [
    m[0] * n[0] + m[1] * n[3],
    m[0] * n[1] + m[1] * n[4],
    m[0] * n[2] + m[1] * n[5] + m[2],
    m[3] * n[0] + m[4] * n[3],
    m[3] * n[1] + m[4] * n[4],
    m[3] * n[2] + m[4] * n[5] + m[5],
  ];
}

function backwardMap(p: SampleParams, height: number, width: number): Affine {
  const flip: Affine = [p.flip ? -1 : 1, 0, 0, 0, 1, 0];
  // Counter-clockwise on screen (y down), as torchvision's rotate; the same matrix it builds.
  const radians = (p.angle * Math.PI) / 180;
  const [cos, sin] = [Math.cos(radians), Math.sin(radians)];
  const rotation: Affine = [cos, -sin, 0, sin, cos, 0];
  // The crop box stretched to the full frame: output centre -> box centre.
  const { top, left, height: h, width: w } = p.crop;
  const crop: Affine = [w / width, 0, left + w / 2 - width / 2, 0, h / height, top + h / 2 - height / 2];
  // Forward is p' = scale * p + t about the centre; backward undoes it.
  const [dx, dy] = p.translate;
  const affine: Affine = [1 / p.scale, 0, -dx / p.scale, 0, 1 / p.scale, -dy / p.scale];
  return compose(compose(compose(flip, rotation), crop), affine);
}

export function isGeometryIdentity(p: SampleParams, height: number, width: number): boolean {
  const { crop } = p;
  const fullFrame = crop.top === 0 && crop.left === 0 && crop.height === height && crop.width === width;
  return !p.flip && p.angle === 0 && fullFrame && isAffineIdentity(p);
}
const isAffineIdentity = (p: SampleParams): boolean => p.translate[0] === 0 && p.translate[1] === 0 && p.scale === 1;

/** Resamples every image through its composed backward map, in one grid (built in `grid`, [n, 2, H, W]) for the batch. */
export function warp(image: torch.Tensor, params: readonly SampleParams[], interpolation: Interpolation, grid: torch.Tensor): torch.Tensor {
  const [, , height, width] = image.shape;
  return torch.gridSample(image, samplingGrid(params, height, width, grid), {
    mode: interpolation,
    paddingMode: 'zeros',
    alignCorners: false,
  });
}

// Added to the x coordinate of output pixels that must come out black: 1e4 half-widths is far
// outside the frame, so every tap of the sampler falls in the zero padding and reads exactly 0.
const OUTSIDE = 1e4;

/**
 * The sampling grid [n, H, W, 2] of the composed backward maps, as affineGrid(theta) would build
 * it (align_corners false: pixel centres at (2i + 1) / size - 1): grid = theta . (X, Y, 1). The
 * map is affine, so the grid is a column part (a X + c, d X + f), which depends on the output
 * column only, plus a row part (b Y, e Y): both are tiny and made here, and two broadcast passes
 * over `planar` ([n, 2, H, W]) build it, instead of affineGrid's new [n, H, W, 3] base grid and
 * batched matmul. Returns the grid as the [n, H, W, 2] view that gridSample takes.
 *
 * torchvision applies RandomAffine to the cropped frame, so whatever a shift or zoom-out brings in
 * from outside that frame is black. The composed map would instead read real pixels from around
 * the crop box (or from beyond the rotated frame when there is no crop), so output pixels whose
 * affine source falls outside [0, size) (PIL's test, on the pixel centre) get a grid point far
 * outside the image, which zero padding turns into exact black. The region is a product of
 * columns and rows, so the shift goes into the column and row parts.
 */
function samplingGrid(params: readonly SampleParams[], height: number, width: number, planar: torch.Tensor): torch.Tensor {
  const n = params.length;
  const columns = new Float32Array(n * 2 * width); // [n, 2, 1, W]: (a X + c, d X + f)
  const rows = new Float32Array(n * 2 * height); // [n, 2, H, 1]: (b Y, e Y)
  const inside = (outputIndex: number, size: number, shift: number, scale: number): boolean => {
    const source = (outputIndex + 0.5 - size / 2 - shift) / scale + size / 2;
    return source >= 0 && source < size;
  };
  params.forEach((p, i) => {
    const m = backwardMap(p, height, width);
    // affineGrid works in normalized coordinates (-1..1 over the frame), so pixel offsets are
    // divided by half the size and the aspect ratio enters the cross terms.
    const [a, b, c] = [m[0], (m[1] * height) / width, (2 * m[2]) / width];
    const [d, e, f] = [(m[3] * width) / height, m[4], (2 * m[5]) / height];
    const masked = !isAffineIdentity(p);
    for (let col = 0; col < width; col++) {
      const xn = (2 * col + 1) / width - 1;
      const off = masked && !inside(col, width, p.translate[0], p.scale) ? OUTSIDE : 0;
      columns[i * 2 * width + col] = a * xn + c + off;
      columns[(i * 2 + 1) * width + col] = d * xn + f;
    }
    for (let row = 0; row < height; row++) {
      const yn = (2 * row + 1) / height - 1;
      const off = masked && !inside(row, height, p.translate[1], p.scale) ? OUTSIDE : 0;
      rows[i * 2 * height + row] = b * yn + off;
      rows[(i * 2 + 1) * height + row] = e * yn;
    }
  });
  torch.tidy(() => {
    planar.copyInPlace(torch.tensor(columns, [n, 2, 1, width]).expand([n, 2, height, width]));
    planar.addInPlace(torch.tensor(rows, [n, 2, height, 1]));
  });
  // gridSample reads an [n, H, W, 2] grid with any strides, and this planar layout (x and y each
  // contiguous along W) as fast as an interleaved one; building it planar avoids broadcasting
  // over pairs, which is several times slower.
  return planar.permute([0, 2, 3, 1]);
}
