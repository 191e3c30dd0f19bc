//! The terminal UI of `tandem edit` (ratatui): the diff grows as the model streams; Esc stops the
//! model at once; typing and Enter steer it; when the answer is complete each hunk can be accepted
//! or rejected before the result is written and committed.

use std::io::Write as _;
use std::process::ExitCode;

use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use tandem_agent::edit::{self, Changed, EditOptions, EditOutcome, Progress};

/// What the edit task tells the UI.
enum Msg {
    Text(String),
    Edit(String),
    Steered(String),
    Malformed(String),
}

enum Phase {
    Streaming,
    Review {
        outcome: Box<EditOutcome>,
        /// (file, hunk, accepted) over all files.
        hunks: Vec<(usize, tandem_patch::Hunk, bool)>,
        cursor: usize,
    },
    Done(String),
}

struct Ui {
    instruction: String,
    diffs: Vec<String>,
    chars: usize,
    input: String,
    status: String,
    phase: Phase,
}

/// Runs the edit in the terminal UI.
pub async fn run(options: EditOptions) -> anyhow::Result<ExitCode> {
    let mut terminal = ratatui::init();
    let result = drive(&mut terminal, options).await;
    ratatui::restore();
    let (code, message) = result?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{message}")?;
    Ok(code)
}

async fn drive(
    terminal: &mut ratatui::DefaultTerminal,
    options: EditOptions,
) -> anyhow::Result<(ExitCode, String)> {
    let (msg_tx, mut msgs) = tokio::sync::mpsc::unbounded_channel();
    let (steer_tx, mut steers) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task_options = EditOptions {
        apply: false,
        ..options.clone()
    };
    let mut task = tokio::spawn(async move {
        edit::run(&task_options, Some(&mut steers), |p| {
            let _ = msg_tx.send(match p {
                Progress::Text(t) => Msg::Text(t.to_owned()),
                Progress::Edit { diff, .. } => Msg::Edit(diff.to_owned()),
                Progress::Steered(s) => Msg::Steered(s.to_owned()),
                Progress::Rewriting(path) => {
                    Msg::Malformed(format!("the edit did not apply; rewriting {path} whole"))
                }
                Progress::Malformed(m) => Msg::Malformed(m.to_owned()),
            });
        })
        .await
    });
    let mut ui = Ui {
        instruction: options.instruction.clone(),
        diffs: Vec::new(),
        chars: 0,
        input: String::new(),
        status: "streaming · Esc stops · type and Enter to steer".into(),
        phase: Phase::Streaming,
    };
    let mut events = EventStream::new();
    let mut task_done = false;
    loop {
        terminal.draw(|frame| draw(frame, &ui))?;
        if let Phase::Done(message) = &ui.phase {
            return Ok((ExitCode::SUCCESS, message.clone()));
        }
        tokio::select! {
            Some(msg) = msgs.recv() => match msg {
                Msg::Text(t) => ui.chars += t.chars().count(),
                Msg::Edit(diff) => ui.diffs.push(diff),
                Msg::Steered(s) => ui.status = format!("steered: {} · streaming", s.lines().next().unwrap_or_default()),
                Msg::Malformed(m) => ui.status = format!("malformed block: {m}"),
            },
            joined = &mut task, if !task_done => {
                task_done = true;
                match joined {
                    Ok(Ok(outcome)) => {
                        let mut hunks = Vec::new();
                        for (i, c) in outcome.changed.iter().enumerate() {
                            for h in tandem_patch::hunks(&c.original, &c.content) {
                                hunks.push((i, h, true));
                            }
                        }
                        ui.status = "review · ↑↓ move · Space toggles · Enter applies the accepted hunks and commits · q discards".into();
                        ui.phase = Phase::Review { outcome: Box::new(outcome), hunks, cursor: 0 };
                    }
                    Ok(Err(err)) => ui.phase = Phase::Done(format!("nothing changed: {err}")),
                    Err(err) => ui.phase = Phase::Done(format!("nothing changed: the edit task failed: {err}")),
                }
            },
            Some(Ok(event)) = events.next() => {
                let Event::Key(key) = event else { continue };
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match &mut ui.phase {
                    Phase::Streaming => match key.code {
                        KeyCode::Esc => {
                            task.abort();
                            ui.phase = Phase::Done("stopped: the model request was cancelled and nothing changed".into());
                        }
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                            task.abort();
                            ui.phase = Phase::Done("stopped: the model request was cancelled and nothing changed".into());
                        }
                        KeyCode::Enter if !ui.input.trim().is_empty() => {
                            let _ = steer_tx.send(std::mem::take(&mut ui.input));
                        }
                        KeyCode::Backspace => {
                            ui.input.pop();
                        }
                        KeyCode::Char(c) => ui.input.push(c),
                        _ => {}
                    },
                    Phase::Review { outcome, hunks, cursor } => match key.code {
                        KeyCode::Up | KeyCode::Char('k') => *cursor = cursor.saturating_sub(1),
                        KeyCode::Down | KeyCode::Char('j') => *cursor = (*cursor + 1).min(hunks.len().saturating_sub(1)),
                        KeyCode::Char(' ') => {
                            if let Some(h) = hunks.get_mut(*cursor) {
                                h.2 = !h.2;
                            }
                        }
                        KeyCode::Char('y') => hunks.iter_mut().for_each(|h| h.2 = true),
                        KeyCode::Char('n') => hunks.iter_mut().for_each(|h| h.2 = false),
                        KeyCode::Char('q') | KeyCode::Esc => ui.phase = Phase::Done("discarded: nothing changed".into()),
                        KeyCode::Enter => {
                            let mut outcome = (**outcome).clone();
                            let selected: Vec<Changed> = outcome
                                .changed
                                .iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    let flags: Vec<bool> = hunks.iter().filter(|h| h.0 == i).map(|h| h.2).collect();
                                    edit::select(c, &flags)
                                })
                                .collect();
                            outcome.changed = selected;
                            ui.status = "applying…".into();
                            terminal.draw(|frame| draw(frame, &ui))?;
                            ui.phase = Phase::Done(match edit::accept(&options, outcome).await {
                                Ok(done) => match (&done.commit, done.ledger_index) {
                                    (Some((branch, commit)), Some(index)) => format!(
                                        "applied {} file(s); committed {} on {branch} (audit ledger entry {index})",
                                        done.changed.len(),
                                        &commit[..commit.len().min(12)]
                                    ),
                                    _ => "applied".into(),
                                },
                                Err(err) => format!("not applied: {err}"),
                            });
                        }
                        _ => {}
                    },
                    Phase::Done(_) => {}
                }
            }
        }
    }
}

fn draw(frame: &mut ratatui::Frame<'_>, ui: &Ui) {
    let [top, status, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(frame.area());
    let mut lines: Vec<Line<'_>> = Vec::new();
    match &ui.phase {
        Phase::Review {
            hunks,
            cursor,
            outcome,
        } => {
            for (n, (file, hunk, accepted)) in hunks.iter().enumerate() {
                let mark = if *accepted { "[x]" } else { "[ ]" };
                let style = if n == *cursor {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                let path = outcome.changed.get(*file).map_or("", |c| c.path.as_str());
                lines.push(Line::styled(
                    format!("{mark} {path} @@ line {}", hunk.old_start + 1),
                    style,
                ));
                for l in &hunk.old_lines {
                    lines.push(diff_line(&format!("-{}", l.trim_end_matches(['\n', '\r']))));
                }
                for l in &hunk.new_lines {
                    lines.push(diff_line(&format!("+{}", l.trim_end_matches(['\n', '\r']))));
                }
            }
        }
        _ => {
            for diff in &ui.diffs {
                lines.extend(diff.lines().map(diff_line));
            }
            if ui.diffs.is_empty() {
                lines.push(Line::raw(format!(
                    "waiting for the first edit… ({} characters so far)",
                    ui.chars
                )));
            }
        }
    }
    let scroll = u16::try_from(
        lines
            .len()
            .saturating_sub(usize::from(top.height.saturating_sub(2))),
    )
    .unwrap_or(0);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" tandem edit: {} ", ui.instruction)),
            )
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        top,
    );
    frame.render_widget(
        Paragraph::new(Span::styled(
            ui.status.clone(),
            Style::default().fg(Color::Yellow),
        )),
        status,
    );
    frame.render_widget(
        Paragraph::new(format!("steer> {}", ui.input))
            .block(Block::default().borders(Borders::ALL)),
        input,
    );
}

fn diff_line(line: &str) -> Line<'static> {
    let color = match line.as_bytes().first() {
        Some(b'+') => Color::Green,
        Some(b'-') => Color::Red,
        Some(b'@') => Color::Cyan,
        _ => Color::Reset,
    };
    Line::styled(line.to_owned(), Style::default().fg(color))
}
