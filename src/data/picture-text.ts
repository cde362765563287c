// Text on the PNG pictures the tool writes (Grad-CAM captions, montage row labels): one line of
// text rendered by sharp (librsvg) from a small SVG, to be composited onto a picture.

const escapeXml = (text: string): string =>
  text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

export interface TextBoxOptions {
  /** Pixel height of the letters (default 13). */
  fontSize?: number;
  /** 'start' (left-aligned, default), 'middle' or 'end'. */
  anchor?: 'start' | 'middle' | 'end';
}

/** An SVG of `width` x `height` with `text` on one line, vertically centred, black on transparent. */
export function textSvg(width: number, height: number, text: string, options: TextBoxOptions = {}): Buffer {
  const { fontSize = 13, anchor = 'start' } = options;
  const x = anchor === 'start' ? 3 : anchor === 'middle' ? width / 2 : width - 3;
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<text x="${x}" y="${height / 2}" dominant-baseline="central" text-anchor="${anchor}" ` +
      `font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#000">${escapeXml(text)}</text></svg>`,
  );
}
