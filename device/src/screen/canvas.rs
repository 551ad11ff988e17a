//! An in-memory screen: a drawing target backed by an RGB image, which the framebuffer
//! copies to the display and the snapshot tests compare and save as PNG.

use std::convert::Infallible;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{Rgb, RgbImage};
use thiserror::Error;

/// A frame in memory, the size of the screen it is meant for.
#[derive(Debug, Clone)]
pub struct Canvas {
    image: RgbImage,
}

/// Why a canvas could not be saved.
#[derive(Debug, Error)]
pub enum CanvasError {
    /// The PNG could not be written: the folder is missing or not writable, or the disk
    /// is full.
    #[error(
        "cannot save the screen image to {path}: {source}; check the folder exists and is writable"
    )]
    Save {
        path: PathBuf,
        source: image::ImageError,
    },
}

impl Canvas {
    /// A black canvas of `size` pixels.
    pub fn new(size: Size) -> Self {
        Canvas {
            image: RgbImage::new(size.width, size.height),
        }
    }

    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    /// Saves the frame as a PNG at the strongest compression: frames are mostly flat
    /// colour, and the snapshot tests keep dozens of them in the repository.
    pub fn save_png(&self, path: &Path) -> Result<(), CanvasError> {
        let save = || -> Result<(), image::ImageError> {
            let file = BufWriter::new(File::create(path)?);
            let encoder =
                PngEncoder::new_with_quality(file, CompressionType::Best, PngFilter::Adaptive);
            self.image.write_with_encoder(encoder)
        };
        save().map_err(|source| CanvasError::Save {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.image.width(), self.image.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        // Drawing past the edge is normal (a shape partly off screen) and is clipped.
        let (width, height) = self.image.dimensions();
        for Pixel(point, color) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if x < width && y < height {
                self.image.put_pixel(x, y, rgb(color));
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        // Rows and columns of a rectangle clipped to the canvas are never negative, so
        // the casts below keep their value.
        let area = area.intersection(&self.bounding_box());
        let pixel = rgb(color);
        for y in area.rows() {
            for x in area.columns() {
                self.image.put_pixel(x as u32, y as u32, pixel);
            }
        }
        Ok(())
    }
}

fn rgb(color: Rgb888) -> Rgb<u8> {
    Rgb([color.r(), color.g(), color.b()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn pixels_outside_the_canvas_are_clipped() {
        let mut canvas = Canvas::new(Size::new(4, 3));
        Rectangle::new(Point::new(-2, 1), Size::new(10, 10))
            .into_styled(embedded_graphics::primitives::PrimitiveStyle::with_fill(
                Rgb888::RED,
            ))
            .draw(&mut canvas)
            .expect("drawing on a canvas cannot fail");
        Pixel(Point::new(-1, 0), Rgb888::GREEN)
            .draw(&mut canvas)
            .expect("drawing on a canvas cannot fail");

        let red = canvas
            .image()
            .pixels()
            .filter(|p| p.0 == [255, 0, 0])
            .count();
        assert_eq!(red, 4 * 2);
        assert_eq!(canvas.image().get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn a_saved_canvas_reads_back_the_same() {
        let dir = TempDir::new();
        let path = dir.path().join("frame.png");
        let mut canvas = Canvas::new(Size::new(5, 2));
        Pixel(Point::new(4, 1), Rgb888::new(10, 20, 30))
            .draw(&mut canvas)
            .expect("drawing on a canvas cannot fail");

        canvas.save_png(&path).expect("save the canvas");

        let back = image::open(&path).expect("read the PNG back").to_rgb8();
        assert_eq!(&back, canvas.image());
    }

    #[test]
    fn saving_into_a_missing_folder_names_the_path() {
        let dir = TempDir::new();
        let path = dir.path().join("missing").join("frame.png");
        let error = Canvas::new(Size::new(1, 1)).save_png(&path).unwrap_err();
        assert!(error.to_string().contains(&path.display().to_string()));
    }
}
