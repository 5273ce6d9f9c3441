/* atelier-jobs.h: the job queue. Engine work (a generation, later an image or a melody) runs
 * on one worker thread, one job at a time: the device is shared, and two generations side by
 * side would each run at half speed while both hold their memory. Everything a job reports
 * (progress, status text, streamed text, the end) reaches the main context the queue was
 * created on, in order, as GObject notifications and signals, so the window only ever touches
 * a job from its main thread.
 *
 * A job is queued (visible in the queue's list model), running, then done, failed or
 * cancelled. atelier_job_cancel() works at any moment: a queued job is cancelled at once and
 * never runs; a running one sees its GCancellable fire and ends at its next check.
 *
 * With ATELIER_PROFILE=1 the queue measures the main loop's latency while a job runs (a timer
 * every 5 ms, how late it fires) and prints the worst, when it came, and the 99th percentile
 * to stderr when the job ends. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  ATELIER_JOB_QUEUED,
  ATELIER_JOB_RUNNING,
  ATELIER_JOB_DONE,
  ATELIER_JOB_FAILED,
  ATELIER_JOB_CANCELLED,
} AtelierJobState;

#define ATELIER_TYPE_JOB (atelier_job_get_type ())
G_DECLARE_FINAL_TYPE (AtelierJob, atelier_job, ATELIER, JOB, GObject)

/* Runs on the worker thread. FALSE with `error` set fails the job; when `cancellable` was
 * cancelled the job ends CANCELLED whatever it returns (a G_IO_ERROR_CANCELLED is not shown
 * as a failure). */
typedef gboolean (*AtelierJobFunc) (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error);

/* `title` is what the queue shows ("Continue with SmolLM-135M"). `destroy` frees `data` on
 * the main context after the job ends. */
AtelierJob *atelier_job_new (const char *title, AtelierJobFunc func, gpointer data, GDestroyNotify destroy);

/* Main thread only (they read what the notifications last delivered). */
const char *atelier_job_get_title (AtelierJob *self);
AtelierJobState atelier_job_get_state (AtelierJob *self);
double atelier_job_get_fraction (AtelierJob *self); /* 0..1, or -1 when unknown */
const char *atelier_job_get_status (AtelierJob *self);
const GError *atelier_job_get_error (AtelierJob *self); /* set when FAILED */
/* All the text streamed so far (the "stream" signal's pieces joined). */
const char *atelier_job_get_text (AtelierJob *self);
gboolean atelier_job_is_finished (AtelierJob *self);
/* What the job function set with atelier_job_set_result, once finished. */
gpointer atelier_job_get_result (AtelierJob *self);

/* Any thread, any moment. */
void atelier_job_cancel (AtelierJob *self);

/* From the job function (worker thread). Progress is coalesced: the main loop sees the latest
 * values (notify::fraction, notify::status), at most about once a frame. Streamed text is
 * never coalesced away: the "stream" signal (const char *piece) delivers every byte, in order,
 * possibly several pieces joined into one emission. */
void atelier_job_report (AtelierJob *self, double fraction, const char *status);
void atelier_job_stream (AtelierJob *self, const char *piece);
void atelier_job_set_result (AtelierJob *self, gpointer result, GDestroyNotify destroy);

/* Signals (main context): "stream" (const char *piece), "finished" (no arguments; the state is
 * DONE, FAILED or CANCELLED). Properties (notify on the main context): "state", "fraction",
 * "status". */

#define ATELIER_TYPE_JOB_QUEUE (atelier_job_queue_get_type ())
G_DECLARE_FINAL_TYPE (AtelierJobQueue, atelier_job_queue, ATELIER, JOB_QUEUE, GObject)

/* The queue delivers to the thread-default main context at creation. It is a GListModel of
 * the jobs not yet finished (the running one first). */
AtelierJobQueue *atelier_job_queue_new (void);
/* Takes a reference; the job runs when those before it have finished. */
void atelier_job_queue_push (AtelierJobQueue *self, AtelierJob *job);
AtelierJob *atelier_job_queue_get_running (AtelierJobQueue *self); /* NULL when idle; not a new ref */
void atelier_job_queue_cancel_all (AtelierJobQueue *self);
/* The worst main-loop latency (µs) measured while jobs ran (ATELIER_PROFILE=1, else 0). */
gint64 atelier_job_queue_get_max_latency (AtelierJobQueue *self);

G_END_DECLS
