//! Every word the kiosk screen shows, in Spanish and English, written for a teacher
//! rather than for IT. Each error says what to do about it.
//!
//! The screen's fonts cover ISO 8859-1 only, so no text may use characters beyond it
//! (no "…", no curly quotes, no dashes other than "-"); a test checks. A `{}` in a text
//! marks where `fill` puts a number or a time.

use std::fmt::Display;

use super::state::{Language, Problem};

/// Puts `value` where the template has `{}`.
pub fn fill(template: &str, value: impl Display) -> String {
    template.replacen("{}", &value.to_string(), 1)
}

/// The words of a problem's banner.
pub fn problem(problem: Problem, language: Language) -> &'static str {
    match problem {
        Problem::CameraMissing => camera_missing(language),
        Problem::CameraBusy => camera_busy(language),
        Problem::DiskFull => disk_full(language),
        Problem::Revoked => revoked_body(language),
        Problem::NoPins => no_pins(language),
        Problem::CaptureFailed => capture_failed(language),
    }
}

// The locked screen.

pub fn locked_title(language: Language) -> &'static str {
    match language {
        Language::Es => "Bloqueado",
        Language::En => "Locked",
    }
}

pub fn enter_pin(language: Language) -> &'static str {
    match language {
        Language::Es => "Introduzca su PIN",
        Language::En => "Enter your PIN",
    }
}

pub fn wrong_pin_once(language: Language) -> &'static str {
    match language {
        Language::Es => "PIN incorrecto",
        Language::En => "Wrong PIN",
    }
}

pub fn wrong_pin_times(language: Language) -> &'static str {
    match language {
        Language::Es => "PIN incorrecto {} veces",
        Language::En => "Wrong PIN {} times",
    }
}

pub fn retry_in(language: Language) -> &'static str {
    match language {
        Language::Es => "Inténtelo de nuevo en {} s",
        Language::En => "Try again in {} s",
    }
}

pub fn key_erase(language: Language) -> &'static str {
    match language {
        Language::Es => "Borrar",
        Language::En => "Erase",
    }
}

pub fn key_ok(language: Language) -> &'static str {
    match language {
        Language::Es => "OK",
        Language::En => "OK",
    }
}

// The unlocked screen.

pub fn take_photo(language: Language) -> &'static str {
    match language {
        Language::Es => "Pulse el botón para hacer una foto",
        Language::En => "Press the button to take a photo",
    }
}

pub fn locks_in(language: Language) -> &'static str {
    match language {
        Language::Es => "Se bloquea en {}",
        Language::En => "Locks in {}",
    }
}

pub fn last_photo_at(language: Language) -> &'static str {
    match language {
        Language::Es => "Última foto a las {}",
        Language::En => "Last photo at {}",
    }
}

pub fn no_photo_yet(language: Language) -> &'static str {
    match language {
        Language::Es => "Aún no hay fotos",
        Language::En => "No photos yet",
    }
}

pub fn faces_none(language: Language) -> &'static str {
    match language {
        Language::Es => "Ninguna cara que tapar",
        Language::En => "No faces to cover",
    }
}

pub fn faces_one(language: Language) -> &'static str {
    match language {
        Language::Es => "1 cara tapada",
        Language::En => "1 face covered",
    }
}

pub fn faces_many(language: Language) -> &'static str {
    match language {
        Language::Es => "{} caras tapadas",
        Language::En => "{} faces covered",
    }
}

// The status bar. These share one line with each other, so they stay short.

pub fn outbox_empty(language: Language) -> &'static str {
    match language {
        Language::Es => "Todo enviado",
        Language::En => "All sent",
    }
}

pub fn outbox_one(language: Language) -> &'static str {
    match language {
        Language::Es => "1 foto por enviar",
        Language::En => "1 waiting to send",
    }
}

pub fn outbox_many(language: Language) -> &'static str {
    match language {
        Language::Es => "{} fotos por enviar",
        Language::En => "{} waiting to send",
    }
}

pub fn hub_connected(language: Language) -> &'static str {
    match language {
        Language::Es => "Conectado al colegio",
        Language::En => "Connected to school",
    }
}

pub fn hub_connecting(language: Language) -> &'static str {
    match language {
        Language::Es => "Conectando al colegio",
        Language::En => "Connecting to school",
    }
}

pub fn hub_offline_since(language: Language) -> &'static str {
    match language {
        Language::Es => "Sin conexión desde {}",
        Language::En => "Offline since {}",
    }
}

pub fn clock_synced(language: Language) -> &'static str {
    match language {
        Language::Es => "Hora correcta",
        Language::En => "Clock set",
    }
}

pub fn clock_unknown(language: Language) -> &'static str {
    match language {
        Language::Es => "Reloj sin hora",
        Language::En => "Clock not set",
    }
}

// Problems: what went wrong, then what to do.

pub fn camera_missing(language: Language) -> &'static str {
    match language {
        Language::Es => "Cámara no encontrada: compruebe el cable",
        Language::En => "Camera not found: check the cable",
    }
}

pub fn camera_busy(language: Language) -> &'static str {
    match language {
        Language::Es => "La cámara está ocupada: espere un momento y vuelva a intentarlo",
        Language::En => "The camera is busy: wait a moment and try again",
    }
}

pub fn disk_full(language: Language) -> &'static str {
    match language {
        Language::Es => "Disco lleno: no se pueden hacer fotos. Avise a informática",
        Language::En => "Disk full: no photos can be taken. Please tell IT",
    }
}

pub fn no_pins(language: Language) -> &'static str {
    match language {
        Language::Es => "Aún no hay PIN de profesores: conecte el dispositivo a la red del colegio",
        Language::En => "No teacher PINs yet: connect the device to the school network",
    }
}

pub fn capture_failed(language: Language) -> &'static str {
    match language {
        Language::Es => "No se pudo hacer la foto: pulse el botón otra vez",
        Language::En => "The photo could not be taken: press the button again",
    }
}

pub fn revoked_title(language: Language) -> &'static str {
    match language {
        Language::Es => "Dispositivo retirado",
        Language::En => "Device withdrawn",
    }
}

pub fn revoked_body(language: Language) -> &'static str {
    match language {
        Language::Es => {
            "El colegio ha retirado este dispositivo y ya no puede hacer fotos. \
             Consulte con el servicio de informática del colegio."
        }
        Language::En => {
            "The school has withdrawn this device, so it can no longer take photos. \
             Please ask the school's IT staff."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of the table, so the checks below cannot miss one.
    const ALL: &[fn(Language) -> &'static str] = &[
        locked_title,
        enter_pin,
        wrong_pin_once,
        wrong_pin_times,
        retry_in,
        key_erase,
        key_ok,
        take_photo,
        locks_in,
        last_photo_at,
        no_photo_yet,
        faces_none,
        faces_one,
        faces_many,
        outbox_empty,
        outbox_one,
        outbox_many,
        hub_connected,
        hub_connecting,
        hub_offline_since,
        clock_synced,
        clock_unknown,
        camera_missing,
        camera_busy,
        disk_full,
        no_pins,
        capture_failed,
        revoked_title,
        revoked_body,
    ];

    #[test]
    fn every_text_fits_the_latin_1_fonts() {
        for message in ALL {
            for language in [Language::Es, Language::En] {
                let text = message(language);
                let outside: Vec<char> = text.chars().filter(|c| u32::from(*c) > 0xFF).collect();
                assert!(
                    outside.is_empty(),
                    "{text:?} has {outside:?}, which the screen's fonts cannot draw"
                );
            }
        }
    }

    #[test]
    fn every_text_has_at_most_one_placeholder() {
        for message in ALL {
            for language in [Language::Es, Language::En] {
                let text = message(language);
                assert!(text.matches("{}").count() <= 1, "{text:?}");
            }
        }
    }

    #[test]
    fn the_two_languages_take_the_same_placeholders() {
        for message in ALL {
            assert_eq!(
                message(Language::Es).contains("{}"),
                message(Language::En).contains("{}"),
                "{:?} and {:?}",
                message(Language::Es),
                message(Language::En)
            );
        }
    }

    #[test]
    fn fill_puts_the_value_in_place_of_the_marker() {
        assert_eq!(
            fill(retry_in(Language::Es), 30),
            "Inténtelo de nuevo en 30 s"
        );
        assert_eq!(fill(enter_pin(Language::En), 3), "Enter your PIN");
    }
}
