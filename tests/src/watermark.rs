//! Looking past the viewer's watermark: where the hub drew it on a delivered
//! image, so that the face measures compare faces, not text.
//!
//! Every preview and original the hub serves carries its viewer's mark:
//! white text outlined in black on a band that halves the brightness of what
//! lies under it; one band along the bottom of a preview, blocks repeated
//! over an original. A block can fall on any face, and its text alone has
//! far more detail than a covered face may keep. So a [`Marked`] image is
//! read against the source it came from:
//!
//! - the **blocks** are found on the image itself, not from the hub's
//!   layout rules: a block is a patch where the image is half as bright as
//!   the source, or a face cover (grey 128) is darkened to 64, or the image
//!   shows text the source lacks. The hub draws one block, or repeats one,
//!   so every block found must have the same size, and outside them the
//!   image must nowhere be darkened like under them (both are asserted);
//! - the **text** inside the blocks is left out of every measure, with the
//!   whole 8 by 8 JPEG cells it lies in, where the encoder's ringing around
//!   such sharp edges stays; so are the cells along each block's edge, and
//!   along each cover's edge for the detail of a region;
//! - under a block the band is undone (the brightness doubled).
//!
//! What remains is measured as on an unmarked image. Undoing the band only
//! rescales, and leaving pixels out keeps a shown face's detail in the
//! pixels that remain; nothing outside the blocks is ever left out as text.
//! A face left uncovered where a cover should be is either measured as
//! such or breaks the two assertions above. [`Detail`] says how much of a
//! region could be measured, and callers check that it is enough.

use image::{DynamicImage, GrayImage, RgbImage};

use crate::measure::Region;

/// The side of a JPEG block. The encoder works on these 8 by 8 squares, and
/// the ringing around a sharp edge (text, a block's border) stays inside the
/// squares the edge crosses: those squares are left out whole.
const JPEG_CELL: u32 = 8;

/// Pixels on each side of a block's edge left out.
const BLOCK_RING: i64 = 4;

/// Pixels on each side of a cover's edge where the evidence is unknown: the
/// preview is shrunk after covering, which blends a cover into its border.
const COVER_RING: f64 = 2.0;

/// How wide the frame is that a review image draws outside each face box.
const FRAME_WIDTH: f64 = 3.0;

/// Gap, in pixels, that still joins two pieces of one block (a dark stretch of
/// photo where the band is invisible, a cover's edge) while they are traced.
const JOIN_GAP: i64 = 8;

/// Gap, in pixels, between the boxes of two traced pieces that still makes
/// them one block: wider, for text on a light stretch of photo, where
/// neither the band nor the text shows.
const MERGE_GAP: f64 = 16.0;

/// What one pixel says about the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    Unknown,
    /// As bright as the source, or a cover at its own grey.
    Clear,
    /// Half as bright as the source, or a cover darkened to half its grey.
    Band,
    Text,
}

/// A delivered image, its source at the same size, the covers the hub drew,
/// and the watermark found on it.
pub struct Marked {
    width: u32,
    height: u32,
    delivered: GrayImage,
    source: GrayImage,
    blocks: Vec<Region>,
    /// The JPEG cells that hold text.
    text: Vec<bool>,
    /// Inside a block (and not in its ring).
    banded: Vec<bool>,
    /// The JPEG cells crossed by a block's edge, give or take
    /// [`BLOCK_RING`].
    ring: Vec<bool>,
    /// The JPEG cells crossed by a cover's edge.
    cover_edges: Vec<bool>,
}

impl Marked {
    /// Finds the watermark on a parent's rendering, given its `source`
    /// resized to the same size and the `covers` the hub should have drawn
    /// (face boxes grown as the hub grows them, in `delivered`'s pixels).
    pub fn new(delivered: &RgbImage, source: &RgbImage, covers: &[Region]) -> Marked {
        Marked::find(delivered, source, covers, &[])
    }

    /// Finds the watermark on a teacher's review image, where every face is
    /// shown with a frame drawn just outside its box (`outlined`, in the
    /// image's pixels).
    pub fn outlined(delivered: &RgbImage, source: &RgbImage, outlined: &[Region]) -> Marked {
        Marked::find(delivered, source, &[], outlined)
    }

    fn find(
        delivered: &RgbImage,
        source: &RgbImage,
        covers: &[Region],
        outlined: &[Region],
    ) -> Marked {
        assert_eq!(delivered.dimensions(), source.dimensions());
        let (width, height) = delivered.dimensions();
        let delivered = DynamicImage::ImageRgb8(delivered.clone()).to_luma8();
        let source = DynamicImage::ImageRgb8(source.clone()).to_luma8();

        let evidence = read_evidence(&delivered, &source, covers, outlined);
        let blocks = find_blocks(&evidence, width, height);
        assert!(!blocks.is_empty(), "no watermark found on the image");
        let (first_w, first_h) = (blocks[0].w, blocks[0].h);
        for block in &blocks {
            assert!(
                (block.w - first_w).abs() <= 4.0 && (block.h - first_h).abs() <= 4.0,
                "the watermark's blocks differ in size: either they were not found right, or \
                 something that should be a flat cover is not (a face left uncovered): {blocks:?}"
            );
        }

        let index = |x: u32, y: u32| (y * width + x) as usize;
        let mut banded = vec![false; (width * height) as usize];
        let mut ring = vec![false; (width * height) as usize];
        for block in &blocks {
            let (x0, y0) = (block.x as i64, block.y as i64);
            let (x1, y1) = (x0 + block.w as i64, y0 + block.h as i64);
            for y in (y0 - BLOCK_RING).max(0)..(y1 + BLOCK_RING).min(height as i64) {
                for x in (x0 - BLOCK_RING).max(0)..(x1 + BLOCK_RING).min(width as i64) {
                    let inner = x >= x0 + BLOCK_RING
                        && x < x1 - BLOCK_RING
                        && y >= y0 + BLOCK_RING
                        && y < y1 - BLOCK_RING;
                    let i = index(x as u32, y as u32);
                    if inner {
                        banded[i] = true;
                    } else {
                        ring[i] = true;
                    }
                }
            }
        }
        let ring = whole_cells(&ring, width, height);
        // A cover's own edge rings in the JPEG like text does.
        let cover_edges: Vec<bool> = raster(covers, width, height, 1.0)
            .into_iter()
            .zip(raster(covers, width, height, -1.0))
            .map(|(grown, shrunk)| grown && !shrunk)
            .collect();
        let cover_edges = whole_cells(&cover_edges, width, height);
        // Text is left out only inside the blocks, where the hub draws it:
        // elsewhere a pixel that looks like text is measured like any other.
        let in_blocks = raster(&blocks, width, height, BLOCK_RING as f64);
        let text_pixels: Vec<bool> = evidence
            .iter()
            .zip(&in_blocks)
            .map(|(e, inside)| *e == Evidence::Text && *inside)
            .collect();
        let text = whole_cells(&dilate(&text_pixels, width, height, 2), width, height);

        let marked = Marked {
            width,
            height,
            delivered,
            source,
            blocks,
            text,
            banded,
            ring,
            cover_edges,
        };
        marked.check_nothing_darkened_outside_the_blocks(&evidence);
        marked
    }

    /// The watermark's blocks, in the image's pixels.
    pub fn blocks(&self) -> &[Region] {
        &self.blocks
    }

    /// The variance of the Laplacian in a region, of the delivered image with
    /// the band undone and of the source, over the same pixels: those whose
    /// whole 4-neighbour stencil is clear of text, of block edges and of
    /// cover edges.
    pub fn detail(&self, region: Region) -> Detail {
        let (width, height) = (self.width as i64, self.height as i64);
        let x0 = (region.x.max(1.0) as i64).min(width - 1);
        let y0 = (region.y.max(1.0) as i64).min(height - 1);
        let x1 = ((region.x + region.w) as i64).clamp(x0, width - 1);
        let y1 = ((region.y + region.h) as i64).clamp(y0, height - 1);

        let mut delivered = Vec::new();
        let mut source = Vec::new();
        let mut pixels = 0usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let stencil = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)];
                let at = |(dx, dy): (i64, i64)| ((y + dy) * width + x + dx) as usize;
                let lap = |value: &dyn Fn(usize) -> f64| {
                    value(at((-1, 0))) + value(at((1, 0))) + value(at((0, -1))) + value(at((0, 1)))
                        - 4.0 * value(at((0, 0)))
                };
                pixels += 1;
                let touches = |mask: &[bool]| stencil.iter().any(|&offset| mask[at(offset)]);
                if touches(&self.text) || touches(&self.ring) || touches(&self.cover_edges) {
                    continue;
                }
                delivered.push(lap(&|i| self.unbanded(i)));
                source.push(lap(&|i| f64::from(self.source.as_raw()[i])));
            }
        }
        Detail {
            delivered: variance(&delivered),
            source: variance(&source),
            pixels: delivered.len(),
            measured: delivered.len() as f64 / pixels.max(1) as f64,
        }
    }

    /// PSNR of luma between the delivered image and the source over the
    /// pixels outside every block and its ring, outside the text, and
    /// outside `excluded`.
    pub fn psnr_outside(&self, excluded: &[Region]) -> f64 {
        let mut sum = 0.0;
        let mut count = 0u64;
        for y in 0..self.height {
            for x in 0..self.width {
                let i = (y * self.width + x) as usize;
                let (fx, fy) = (f64::from(x), f64::from(y));
                if self.banded[i]
                    || self.ring[i]
                    || self.text[i]
                    || excluded.iter().any(|r| r.contains(fx, fy))
                {
                    continue;
                }
                let d = f64::from(self.delivered.as_raw()[i]) - f64::from(self.source.as_raw()[i]);
                sum += d * d;
                count += 1;
            }
        }
        assert!(
            count * 4 >= u64::from(self.width * self.height),
            "only {count} pixels lie outside the watermark and the covers: nothing to compare"
        );
        psnr(sum, count)
    }

    /// PSNR of luma between the delivered image with its band undone and the
    /// source, inside the blocks, leaving out text, rings and `excluded`: the
    /// band only darkens what it lies on. `None` when the text leaves fewer
    /// than a thousand pixels to compare.
    pub fn psnr_under_the_band(&self, excluded: &[Region]) -> Option<f64> {
        let mut sum = 0.0;
        let mut count = 0u64;
        for y in 0..self.height {
            for x in 0..self.width {
                let i = (y * self.width + x) as usize;
                let (fx, fy) = (f64::from(x), f64::from(y));
                if !self.banded[i]
                    || self.ring[i]
                    || self.text[i]
                    || excluded.iter().any(|r| r.contains(fx, fy))
                {
                    continue;
                }
                let d = self.unbanded(i).min(255.0) - f64::from(self.source.as_raw()[i]);
                sum += d * d;
                count += 1;
            }
        }
        (count >= 1000).then(|| psnr(sum, count))
    }

    /// The delivered luma, band undone, of every pixel clear of the text and
    /// of the blocks' edges.
    pub fn unbanded_pixels(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.banded.len())
            .filter(|&i| !self.text[i] && !self.ring[i])
            .map(|i| self.unbanded(i))
    }

    /// The delivered luma at pixel `i` with the band undone.
    fn unbanded(&self, i: usize) -> f64 {
        let value = f64::from(self.delivered.as_raw()[i]);
        if self.banded[i] {
            value * 2.0
        } else {
            value
        }
    }

    /// Outside the blocks found, the image is nowhere half as bright as its
    /// source beyond a scatter of noisy pixels: no block was missed.
    fn check_nothing_darkened_outside_the_blocks(&self, evidence: &[Evidence]) {
        let mut known = 0usize;
        let mut band = 0usize;
        for (i, e) in evidence.iter().enumerate() {
            if self.banded[i] || self.ring[i] || self.text[i] {
                continue;
            }
            match e {
                Evidence::Band => {
                    band += 1;
                    known += 1;
                }
                Evidence::Clear => known += 1,
                _ => {}
            }
        }
        assert!(
            (band as f64) <= (known as f64) * 0.01,
            "{band} of {known} pixels outside the watermark's blocks {:?} are darkened as under it",
            self.blocks
        );
    }
}

/// The detail of one region, as [`Marked::detail`] measures it.
#[derive(Debug, Clone, Copy)]
pub struct Detail {
    /// Laplacian variance of the delivered image, band undone, over the
    /// measured pixels.
    pub delivered: f64,
    /// Laplacian variance of the source over the same pixels.
    pub source: f64,
    /// How many pixels could be measured.
    pub pixels: usize,
    /// The share of the region's pixels that could be measured.
    pub measured: f64,
}

impl Detail {
    /// Whether enough pixels were measured to say anything: at least one
    /// JPEG cell's worth. Over fewer, the encoder's noise (doubled under the
    /// band) outweighs what a small face's pixels hold.
    pub fn is_telling(&self) -> bool {
        self.pixels >= (JPEG_CELL * JPEG_CELL) as usize
    }

    /// Less than a tenth of the source's detail is left, where it could be
    /// measured at all.
    pub fn is_covered(&self) -> bool {
        !self.is_telling() || self.delivered < self.source / 10.0
    }
}

/// What each pixel says about the watermark.
fn read_evidence(
    delivered: &GrayImage,
    source: &GrayImage,
    covers: &[Region],
    outlined: &[Region],
) -> Vec<Evidence> {
    let (width, height) = delivered.dimensions();
    let in_cover = raster(covers, width, height, 0.0);
    // Where only text can be told apart: along a cover's edge, and over a
    // review frame (drawn a few pixels outside its box) and what it frames,
    // whose colours and ringing look like neither photo nor band.
    let mut uncertain: Vec<bool> = raster(covers, width, height, COVER_RING)
        .into_iter()
        .zip(raster(covers, width, height, -COVER_RING))
        .map(|(grown, shrunk)| grown && !shrunk)
        .collect();
    let framed = raster(outlined, width, height, FRAME_WIDTH + COVER_RING);
    for (u, f) in uncertain.iter_mut().zip(framed) {
        *u |= f;
    }

    let mut evidence = Vec::with_capacity((width * height) as usize);
    for (i, (p, s)) in delivered.as_raw().iter().zip(source.as_raw()).enumerate() {
        let (p, s) = (f64::from(*p), f64::from(*s));
        let extreme = !(30.0..=220.0).contains(&p);
        let text = extreme && (p - s).abs() > 60.0;
        evidence.push(if uncertain[i] {
            if text {
                Evidence::Text
            } else {
                Evidence::Unknown
            }
        } else if in_cover[i] {
            // A cover is grey 128, 64 under the band, and the text drawn over
            // it white or black.
            if extreme {
                Evidence::Text
            } else if p < 96.0 {
                Evidence::Band
            } else {
                Evidence::Clear
            }
        } else if text {
            Evidence::Text
        } else if s < 48.0 {
            // Too dark to tell half from whole through JPEG noise.
            Evidence::Unknown
        } else if p < 0.7 * s {
            Evidence::Band
        } else if p > 0.8 * s {
            Evidence::Clear
        } else {
            Evidence::Unknown
        });
    }
    evidence
}

/// The pixels whose centre lies in one of `regions`, each grown by `by`.
fn raster(regions: &[Region], width: u32, height: u32, by: f64) -> Vec<bool> {
    let mut mask = vec![false; (width * height) as usize];
    for region in regions {
        let r = region.grown_by(by);
        let x0 = (r.x - 0.5).ceil().max(0.0) as u32;
        let y0 = (r.y - 0.5).ceil().max(0.0) as u32;
        let x1 = ((r.x + r.w - 0.5).ceil().max(0.0) as u32).min(width);
        let y1 = ((r.y + r.h - 0.5).ceil().max(0.0) as u32).min(height);
        for y in y0..y1 {
            for x in x0..x1 {
                mask[(y * width + x) as usize] = true;
            }
        }
    }
    mask
}

/// The blocks: bounding boxes of the patches of band and text evidence,
/// pieces joined across small gaps, keeping patches that are mostly band.
fn find_blocks(evidence: &[Evidence], width: u32, height: u32) -> Vec<Region> {
    let marked: Vec<bool> = evidence
        .iter()
        .map(|e| matches!(e, Evidence::Band | Evidence::Text))
        .collect();
    let joined = dilate(&marked, width, height, JOIN_GAP / 2);

    let (w, h) = (width as i64, height as i64);
    let mut label = vec![0u32; marked.len()];
    let mut blocks = Vec::new();
    let mut next = 0u32;
    for start in 0..marked.len() {
        if !marked[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, -1i64, -1i64);
        let mut stack = vec![start];
        label[start] = next;
        while let Some(i) = stack.pop() {
            let (x, y) = (i as i64 % w, i as i64 / w);
            if marked[i] {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
            for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w || ny >= h {
                    continue;
                }
                let j = (ny * w + nx) as usize;
                if joined[j] && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            }
        }

        // A block is large and, where the evidence is known, mostly band.
        let (mut marks, mut known) = (0usize, 0usize);
        for y in y0..=y1 {
            for x in x0..=x1 {
                match evidence[(y * w + x) as usize] {
                    Evidence::Band | Evidence::Text => {
                        marks += 1;
                        known += 1;
                    }
                    Evidence::Clear => known += 1,
                    Evidence::Unknown => {}
                }
            }
        }
        let area = (x1 - x0 + 1) * (y1 - y0 + 1);
        if area >= 400 && marks >= 200 && marks as f64 >= 0.6 * known as f64 {
            blocks.push(Region {
                x: x0 as f64,
                y: y0 as f64,
                w: (x1 - x0 + 1) as f64,
                h: (y1 - y0 + 1) as f64,
            });
        }
    }
    merge_overlapping(blocks)
}

/// Joins boxes that overlap: pieces of one block that a wide dark stretch of
/// the photo kept apart.
fn merge_overlapping(mut boxes: Vec<Region>) -> Vec<Region> {
    let mut merged = true;
    while merged {
        merged = false;
        'search: for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                if boxes[i].grown_by(MERGE_GAP).intersects(boxes[j]) {
                    let (a, b) = (boxes[i], boxes.swap_remove(j));
                    let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
                    let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
                    boxes[i] = Region {
                        x: x0,
                        y: y0,
                        w: x1 - x0,
                        h: y1 - y0,
                    };
                    merged = true;
                    break 'search;
                }
            }
        }
    }
    boxes
}

/// Sets every pixel of each [`JPEG_CELL`] square that holds a set pixel.
fn whole_cells(mask: &[bool], width: u32, height: u32) -> Vec<bool> {
    let cells_across = width.div_ceil(JPEG_CELL);
    let mut cells = vec![false; (cells_across * height.div_ceil(JPEG_CELL)) as usize];
    for (i, _) in mask.iter().enumerate().filter(|(_, &set)| set) {
        let (x, y) = (i as u32 % width, i as u32 / width);
        cells[((y / JPEG_CELL) * cells_across + x / JPEG_CELL) as usize] = true;
    }
    (0..mask.len())
        .map(|i| {
            let (x, y) = (i as u32 % width, i as u32 / width);
            cells[((y / JPEG_CELL) * cells_across + x / JPEG_CELL) as usize]
        })
        .collect()
}

/// Grows the set pixels of a mask by `by` pixels each way (a square).
fn dilate(mask: &[bool], width: u32, height: u32, by: i64) -> Vec<bool> {
    let (w, h) = (width as i64, height as i64);
    let mut rows = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = ((x - by).max(0), (x + by).min(w - 1));
            rows[(y * w + x) as usize] = (a..=b).any(|xx| mask[(y * w + xx) as usize]);
        }
    }
    let mut out = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = ((y - by).max(0), (y + by).min(h - 1));
            out[(y * w + x) as usize] = (a..=b).any(|yy| rows[(yy * w + x) as usize]);
        }
    }
    out
}

fn variance(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64
}

fn psnr(sum: f64, count: u64) -> f64 {
    if count == 0 || sum == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / (sum / count as f64)).log10()
}

#[cfg(test)]
mod tests {
    use image::codecs::jpeg::JpegEncoder;
    use image::Rgb;

    use super::*;
    use crate::measure::load_upright;
    use crate::{faces_json, testdata};

    const PHOTO: &str = "voc_2008_001322.jpg";

    fn faces() -> Vec<Region> {
        faces_json()[PHOTO]["faces"]
            .as_array()
            .expect("annotated faces")
            .iter()
            .map(Region::from_json)
            .collect()
    }

    fn paint(image: &mut RgbImage, region: Region, colour: impl Fn(Rgb<u8>) -> Rgb<u8>) {
        let (width, height) = image.dimensions();
        for y in (region.y.max(0.0) as u32)..((region.y + region.h) as u32).min(height) {
            for x in (region.x.max(0.0) as u32)..((region.x + region.w) as u32).min(width) {
                let pixel = *image.get_pixel(x, y);
                image.put_pixel(x, y, colour(pixel));
            }
        }
    }

    /// The photo as a hub would render it: `painted` faces covered grey, a
    /// band along the bottom halving the brightness, with white text bars
    /// outlined in black, through a JPEG at the hub's quality.
    fn rendering(source: &RgbImage, painted: &[Region]) -> RgbImage {
        let mut image = source.clone();
        for face in painted {
            paint(&mut image, face.hub_cover(), |_| Rgb([128, 128, 128]));
        }
        let (width, height) = image.dimensions();
        let band = Region {
            x: 0.0,
            y: f64::from(height - 40),
            w: f64::from(width * 2 / 3),
            h: 40.0,
        };
        paint(&mut image, band, |p| Rgb([p[0] / 2, p[1] / 2, p[2] / 2]));
        for bar in 0..20 {
            let glyph = Region {
                x: 8.0 + 15.0 * f64::from(bar),
                y: f64::from(height - 30),
                w: 8.0,
                h: 14.0,
            };
            paint(&mut image, glyph, |_| Rgb([0, 0, 0]));
            paint(&mut image, glyph.grown_by(-1.0), |_| Rgb([255, 255, 255]));
        }
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&image)
            .expect("encode");
        crate::measure::decode(&jpeg)
    }

    #[test]
    fn a_shown_face_keeps_its_detail_and_covered_faces_keep_none() {
        let source = load_upright(&testdata(PHOTO));
        let faces = faces();
        let delivered = rendering(&source, &faces[1..]);
        let covers: Vec<Region> = faces[1..].iter().map(Region::hub_cover).collect();
        let marked = Marked::new(&delivered, &source, &covers);

        assert_eq!(marked.blocks().len(), 1, "{:?}", marked.blocks());
        let shown = marked.detail(faces[0]);
        assert!(
            shown.is_telling() && shown.delivered >= shown.source / 2.0,
            "{shown:?}"
        );
        for face in &faces[1..] {
            let covered = marked.detail(*face);
            assert!(covered.is_telling() && covered.is_covered(), "{covered:?}");
        }
        assert!(marked.psnr_outside(&covers) >= 30.0);
    }

    #[test]
    fn a_face_left_uncovered_does_not_pass_for_a_cover() {
        let source = load_upright(&testdata(PHOTO));
        let faces = faces();
        // The hub was to cover every face but left the first one.
        let delivered = rendering(&source, &faces[1..]);
        let covers: Vec<Region> = faces.iter().map(Region::hub_cover).collect();

        let verdict = std::panic::catch_unwind(|| {
            Marked::new(&delivered, &source, &covers)
                .detail(faces[0])
                .is_covered()
        });
        assert!(
            !matches!(verdict, Ok(true)),
            "an uncovered face was measured as covered"
        );
    }
}
