/* atelier-jobs.c: the job queue (see atelier-jobs.h).
 *
 * Threads: each job runs on a thread of its own, started by the queue on its main context only
 * after the previous job's end was delivered there (and that thread joined), so at most one
 * job of a queue runs at a time. The worker writes only the `pending_*` fields, under the job's lock; a flush on the main
 * context moves them to the fields the getters read and emits the signals. The end of a job is
 * an idle on the main context that flushes first, so "finished" always follows the last
 * "stream".
 *
 * Traps:
 * - The queue may be finalized while a job runs: dispose cancels the job and joins its thread,
 *   because the owner frees what the job uses (the writer) right after the queue; the job
 *   keeps only a plain pointer to its queue, cleared by dispose, and the worker never touches
 *   the queue. The job's end still arrives later, if the main loop turns again.
 * - atelier_job_cancel may come from any thread: removing a queued job is deferred to the
 *   main context (g_main_context_invoke runs it at once when called there), and a job that
 *   was cancelled while queued is never started even if that removal has not run yet.
 * - A job whose window is gone still ends: the worker's reference travels with the end idle. */
#include "config.h"

#include "atelier-jobs.h"

#include <glib/gi18n.h>
#include <stdio.h>

/* How often the main loop sees progress and text (ms): about a frame. */
#define FLUSH_INTERVAL_MS 16
/* The latency probe's period (ATELIER_PROFILE=1). */
#define PROBE_INTERVAL_MS 5

struct _AtelierJob
{
  GObject parent_instance;

  char *title;
  AtelierJobFunc func;
  gpointer data;
  GDestroyNotify destroy;
  GCancellable *cancellable;
  GMainContext *context;  /* the queue's, set by push */
  AtelierJobQueue *queue; /* not a reference; NULL once the queue is gone or the job ended */

  /* Main context only. */
  AtelierJobState state;
  double fraction;
  char *status;
  GError *error;
  GString *text;
  gpointer result;
  GDestroyNotify result_destroy;

  /* Worker → main, under `lock`. */
  GMutex lock;
  gboolean flush_scheduled, progress_dirty;
  double pending_fraction;
  char *pending_status;
  GString *pending_text;
  gpointer pending_result;
  GDestroyNotify pending_result_destroy;
  gboolean worker_ok;
  GError *worker_error;
};

enum
{
  JOB_PROP_0,
  JOB_PROP_TITLE,
  JOB_PROP_STATE,
  JOB_PROP_FRACTION,
  JOB_PROP_STATUS,
  JOB_N_PROPS,
};

enum
{
  SIGNAL_STREAM,
  SIGNAL_FINISHED,
  N_SIGNALS,
};

static GParamSpec *job_props[JOB_N_PROPS];
static guint job_signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AtelierJob, atelier_job, G_TYPE_OBJECT)

struct _AtelierJobQueue
{
  GObject parent_instance;

  GMainContext *context;
  GPtrArray *jobs;     /* AtelierJob (owned): the running one first, then the queued ones */
  AtelierJob *running; /* jobs[0] while a job runs */
  GThread *thread;     /* the running job's, joined when its end arrives */

  /* ATELIER_PROFILE=1 */
  gboolean profile;
  GSource *probe;
  gint64 probe_expected; /* when the probe should fire next (monotonic µs) */
  GArray *lateness;      /* gint64 µs, the current job's ticks */
  gint64 probe_started;  /* when the current job started (monotonic µs) */
  gint64 job_worst, job_worst_at; /* its worst tick, and when (µs after the start) */
  gint64 max_latency;
};

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtelierJobQueue, atelier_job_queue, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

static void queue_job_ended (AtelierJobQueue *self, AtelierJob *job);
static void queue_remove_job (AtelierJobQueue *self, AtelierJob *job);

static GType
job_state_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { ATELIER_JOB_QUEUED, "ATELIER_JOB_QUEUED", "queued" },
    { ATELIER_JOB_RUNNING, "ATELIER_JOB_RUNNING", "running" },
    { ATELIER_JOB_DONE, "ATELIER_JOB_DONE", "done" },
    { ATELIER_JOB_FAILED, "ATELIER_JOB_FAILED", "failed" },
    { ATELIER_JOB_CANCELLED, "ATELIER_JOB_CANCELLED", "cancelled" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static (g_intern_static_string ("AtelierJobState"), values));
  return type;
}

/* ---- AtelierJob ---- */

static void
atelier_job_finalize (GObject *object)
{
  AtelierJob *self = ATELIER_JOB (object);

  /* Normally freed by the end of the job on the main context; here only when it never ran. */
  if (self->destroy != NULL && self->data != NULL)
    self->destroy (self->data);
  if (self->result_destroy != NULL && self->result != NULL)
    self->result_destroy (self->result);
  if (self->pending_result_destroy != NULL && self->pending_result != NULL)
    self->pending_result_destroy (self->pending_result);
  g_free (self->title);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->status);
  g_clear_error (&self->error);
  g_string_free (self->text, TRUE);
  g_free (self->pending_status);
  g_string_free (self->pending_text, TRUE);
  g_clear_error (&self->worker_error);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (atelier_job_parent_class)->finalize (object);
}

static void
atelier_job_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  AtelierJob *self = ATELIER_JOB (object);

  switch (prop_id)
    {
    case JOB_PROP_TITLE:
      g_value_set_string (value, self->title);
      break;
    case JOB_PROP_STATE:
      g_value_set_enum (value, (int) self->state);
      break;
    case JOB_PROP_FRACTION:
      g_value_set_double (value, self->fraction);
      break;
    case JOB_PROP_STATUS:
      g_value_set_string (value, self->status);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atelier_job_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  AtelierJob *self = ATELIER_JOB (object);

  switch (prop_id)
    {
    case JOB_PROP_TITLE:
      g_free (self->title);
      self->title = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atelier_job_class_init (AtelierJobClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = atelier_job_finalize;
  object_class->get_property = atelier_job_get_property;
  object_class->set_property = atelier_job_set_property;

  job_props[JOB_PROP_TITLE] = g_param_spec_string ("title", NULL, NULL, NULL,
                                                   G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY
                                                     | G_PARAM_STATIC_STRINGS);
  job_props[JOB_PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, job_state_get_type (), ATELIER_JOB_QUEUED,
                                                 G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  job_props[JOB_PROP_FRACTION] = g_param_spec_double ("fraction", NULL, NULL, -1, 1, -1,
                                                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  job_props[JOB_PROP_STATUS] = g_param_spec_string ("status", NULL, NULL, NULL,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, JOB_N_PROPS, job_props);

  job_signals[SIGNAL_STREAM] = g_signal_new ("stream", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                             NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  job_signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 0);
}

static void
atelier_job_init (AtelierJob *self)
{
  g_mutex_init (&self->lock);
  self->state = ATELIER_JOB_QUEUED;
  self->fraction = -1;
  self->pending_fraction = -1;
  self->text = g_string_new (NULL);
  self->pending_text = g_string_new (NULL);
  self->cancellable = g_cancellable_new ();
}

AtelierJob *
atelier_job_new (const char *title, AtelierJobFunc func, gpointer data, GDestroyNotify destroy)
{
  AtelierJob *self;

  g_return_val_if_fail (func != NULL, NULL);
  self = g_object_new (ATELIER_TYPE_JOB, "title", title != NULL ? title : "", NULL);
  self->func = func;
  self->data = data;
  self->destroy = destroy;
  return self;
}

const char *
atelier_job_get_title (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), NULL);
  return self->title;
}

AtelierJobState
atelier_job_get_state (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), ATELIER_JOB_FAILED);
  return self->state;
}

double
atelier_job_get_fraction (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), -1);
  return self->fraction;
}

const char *
atelier_job_get_status (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), NULL);
  return self->status;
}

const GError *
atelier_job_get_error (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), NULL);
  return self->error;
}

const char *
atelier_job_get_text (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), NULL);
  return self->text->str;
}

gboolean
atelier_job_is_finished (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), FALSE);
  return self->state >= ATELIER_JOB_DONE;
}

gpointer
atelier_job_get_result (AtelierJob *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB (self), NULL);
  return self->result;
}

static void
job_set_state (AtelierJob *self, AtelierJobState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), job_props[JOB_PROP_STATE]);
}

/* Main context: delivers what the worker left since the last flush. */
static void
job_flush (AtelierJob *self)
{
  g_autofree char *piece = NULL, *status = NULL;
  gboolean progress;
  double fraction;

  g_mutex_lock (&self->lock);
  self->flush_scheduled = FALSE;
  if (self->pending_text->len > 0)
    {
      piece = g_strndup (self->pending_text->str, self->pending_text->len);
      g_string_truncate (self->pending_text, 0);
    }
  progress = self->progress_dirty;
  self->progress_dirty = FALSE;
  fraction = self->pending_fraction;
  status = g_strdup (self->pending_status);
  g_mutex_unlock (&self->lock);

  g_object_freeze_notify (G_OBJECT (self));
  if (progress && fraction != self->fraction)
    {
      self->fraction = fraction;
      g_object_notify_by_pspec (G_OBJECT (self), job_props[JOB_PROP_FRACTION]);
    }
  if (progress && g_strcmp0 (status, self->status) != 0)
    {
      g_free (self->status);
      self->status = g_steal_pointer (&status);
      g_object_notify_by_pspec (G_OBJECT (self), job_props[JOB_PROP_STATUS]);
    }
  g_object_thaw_notify (G_OBJECT (self));
  if (piece != NULL)
    {
      g_string_append (self->text, piece);
      g_signal_emit (self, job_signals[SIGNAL_STREAM], 0, piece);
    }
}

static gboolean
job_flush_cb (gpointer data)
{
  job_flush (ATELIER_JOB (data));
  return G_SOURCE_REMOVE;
}

/* Worker thread, with the lock held. */
static void
job_schedule_flush_locked (AtelierJob *self)
{
  g_autoptr (GSource) source = NULL;

  if (self->flush_scheduled || self->context == NULL)
    return;
  self->flush_scheduled = TRUE;
  source = g_timeout_source_new (FLUSH_INTERVAL_MS);
  g_source_set_static_name (source, "[atelier] job flush");
  g_source_set_callback (source, job_flush_cb, g_object_ref (self), g_object_unref);
  g_source_attach (source, self->context);
}

void
atelier_job_report (AtelierJob *self, double fraction, const char *status)
{
  g_return_if_fail (ATELIER_IS_JOB (self));
  g_mutex_lock (&self->lock);
  self->pending_fraction = fraction < 0 ? -1 : MIN (fraction, 1.0);
  if (g_strcmp0 (status, self->pending_status) != 0)
    {
      g_free (self->pending_status);
      self->pending_status = g_strdup (status);
    }
  self->progress_dirty = TRUE;
  job_schedule_flush_locked (self);
  g_mutex_unlock (&self->lock);
}

void
atelier_job_stream (AtelierJob *self, const char *piece)
{
  g_return_if_fail (ATELIER_IS_JOB (self));
  if (piece == NULL || *piece == '\0')
    return;
  g_mutex_lock (&self->lock);
  g_string_append (self->pending_text, piece);
  job_schedule_flush_locked (self);
  g_mutex_unlock (&self->lock);
}

void
atelier_job_set_result (AtelierJob *self, gpointer result, GDestroyNotify destroy)
{
  gpointer old;
  GDestroyNotify old_destroy;

  g_return_if_fail (ATELIER_IS_JOB (self));
  g_mutex_lock (&self->lock);
  old = self->pending_result;
  old_destroy = self->pending_result_destroy;
  self->pending_result = result;
  self->pending_result_destroy = destroy;
  g_mutex_unlock (&self->lock);
  if (old != NULL && old_destroy != NULL)
    old_destroy (old);
}

/* Main context: the job is over (ran, or cancelled before it ran). Emits the last pieces,
 * the state and "finished", frees the data, and lets the queue start the next one. */
static void
job_end (AtelierJob *self, AtelierJobState state, GError *error)
{
  AtelierJobQueue *queue = self->queue;
  gpointer data = self->data;
  GDestroyNotify destroy = self->destroy;

  g_object_ref (self);
  job_flush (self);
  g_mutex_lock (&self->lock);
  self->result = g_steal_pointer (&self->pending_result);
  self->result_destroy = self->pending_result_destroy;
  self->pending_result_destroy = NULL;
  g_mutex_unlock (&self->lock);
  self->error = error;
  self->queue = NULL;
  self->data = NULL;
  self->destroy = NULL;
  if (queue != NULL)
    queue_remove_job (queue, self);
  job_set_state (self, state);
  g_signal_emit (self, job_signals[SIGNAL_FINISHED], 0);
  if (destroy != NULL && data != NULL)
    destroy (data);
  if (queue != NULL)
    queue_job_ended (queue, self);
  g_object_unref (self);
}

static gboolean
job_worker_done_cb (gpointer data)
{
  AtelierJob *self = data;
  GError *error;
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = self->worker_ok;
  error = g_steal_pointer (&self->worker_error);
  g_mutex_unlock (&self->lock);

  if (g_cancellable_is_cancelled (self->cancellable)
      || (error != NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
    {
      g_clear_error (&error);
      job_end (self, ATELIER_JOB_CANCELLED, NULL);
    }
  else if (!ok)
    {
      if (error == NULL)
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, _("“%s” failed without saying why"), self->title);
      job_end (self, ATELIER_JOB_FAILED, error);
    }
  else
    {
      g_clear_error (&error);
      job_end (self, ATELIER_JOB_DONE, NULL);
    }
  return G_SOURCE_REMOVE;
}

static gpointer
job_worker (gpointer data)
{
  AtelierJob *self = data; /* a reference, handed on to the end idle */
  GError *error = NULL;
  gboolean ok;
  g_autoptr (GSource) source = NULL;

  ok = self->func (self, self->data, self->cancellable, &error);
  g_mutex_lock (&self->lock);
  self->worker_ok = ok;
  self->worker_error = error;
  g_mutex_unlock (&self->lock);
  source = g_idle_source_new ();
  g_source_set_static_name (source, "[atelier] job end");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, job_worker_done_cb, self, g_object_unref);
  g_source_attach (source, self->context);
  return NULL;
}

static gboolean
job_cancel_queued_cb (gpointer data)
{
  AtelierJob *self = data;

  /* Only a job still waiting ends here; a running one ends when its function returns. */
  if (self->state == ATELIER_JOB_QUEUED && self->queue != NULL)
    job_end (self, ATELIER_JOB_CANCELLED, NULL);
  return G_SOURCE_REMOVE;
}

void
atelier_job_cancel (AtelierJob *self)
{
  g_return_if_fail (ATELIER_IS_JOB (self));
  g_cancellable_cancel (self->cancellable);
  /* `context` is set once, by push on the main context, before any other thread sees the job. */
  if (self->context != NULL)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, job_cancel_queued_cb, g_object_ref (self),
                                g_object_unref);
}

/* ---- AtelierJobQueue ---- */

static GType
queue_get_item_type (GListModel *model)
{
  return ATELIER_TYPE_JOB;
}

static guint
queue_get_n_items (GListModel *model)
{
  return ATELIER_JOB_QUEUE (model)->jobs->len;
}

static gpointer
queue_get_item (GListModel *model, guint position)
{
  AtelierJobQueue *self = ATELIER_JOB_QUEUE (model);

  if (position >= self->jobs->len)
    return NULL;
  return g_object_ref (g_ptr_array_index (self->jobs, position));
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = queue_get_item_type;
  iface->get_n_items = queue_get_n_items;
  iface->get_item = queue_get_item;
}

static gboolean
probe_cb (gpointer data)
{
  AtelierJobQueue *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 late = MAX (now - self->probe_expected, 0);

  g_array_append_val (self->lateness, late);
  self->max_latency = MAX (self->max_latency, late);
  if (late > self->job_worst)
    {
      self->job_worst = late;
      self->job_worst_at = now - self->probe_started;
    }
  self->probe_expected = now + PROBE_INTERVAL_MS * 1000;
  return G_SOURCE_CONTINUE;
}

static void
probe_start (AtelierJobQueue *self)
{
  if (!self->profile)
    return;
  g_array_set_size (self->lateness, 0);
  self->probe = g_timeout_source_new (PROBE_INTERVAL_MS);
  g_source_set_static_name (self->probe, "[atelier] main loop latency probe");
  g_source_set_callback (self->probe, probe_cb, self, NULL);
  self->probe_started = g_get_monotonic_time ();
  self->probe_expected = self->probe_started + PROBE_INTERVAL_MS * 1000;
  self->job_worst = self->job_worst_at = 0;
  g_source_attach (self->probe, self->context);
}

static int
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static void
probe_stop (AtelierJobQueue *self, AtelierJob *job)
{
  gint64 p99;
  guint n;

  if (self->probe == NULL)
    return;
  g_source_destroy (self->probe);
  g_clear_pointer (&self->probe, g_source_unref);
  n = self->lateness->len;
  if (n > 0)
    {
      g_array_sort (self->lateness, cmp_gint64);
      /* The nearest-rank 99th percentile. */
      p99 = g_array_index (self->lateness, gint64, MIN (n - 1, (n * 99 + 99) / 100 - 1));
    }
  else
    p99 = 0;
  fprintf (stderr,
           "job \"%s\": main loop latency worst %.1f ms, p99 %.1f ms over %u ticks"
           " (the worst %.0f ms after the start)\n",
           job->title, self->job_worst / 1000.0, p99 / 1000.0, n, self->job_worst_at / 1000.0);
}

/* Starts the first queued job, skipping (ending) any that were cancelled meanwhile. */
static void
queue_start_next (AtelierJobQueue *self)
{
  AtelierJob *job;

  while (self->running == NULL && self->jobs->len > 0)
    {
      job = g_ptr_array_index (self->jobs, 0);
      if (g_cancellable_is_cancelled (job->cancellable))
        {
          job_end (job, ATELIER_JOB_CANCELLED, NULL);
          continue;
        }
      self->running = job;
      job_set_state (job, ATELIER_JOB_RUNNING);
      probe_start (self);
      self->thread = g_thread_new ("atelier-job", job_worker, g_object_ref (job));
    }
}

static void
queue_remove_job (AtelierJobQueue *self, AtelierJob *job)
{
  guint pos;

  if (!g_ptr_array_find (self->jobs, job, &pos))
    return;
  if (self->running == job)
    {
      self->running = NULL;
      probe_stop (self, job);
      /* The worker's last act was to queue the end we are in: this wait is for its return. */
      g_clear_pointer (&self->thread, g_thread_join);
    }
  /* The array's reference is dropped after the signal: handlers may still look at the job. */
  g_object_ref (job);
  g_ptr_array_remove_index (self->jobs, pos);
  g_list_model_items_changed (G_LIST_MODEL (self), pos, 1, 0);
  g_object_unref (job);
}

static void
queue_job_ended (AtelierJobQueue *self, AtelierJob *job)
{
  queue_start_next (self);
}

static void
atelier_job_queue_dispose (GObject *object)
{
  AtelierJobQueue *self = ATELIER_JOB_QUEUE (object);
  g_autoptr (GPtrArray) jobs = g_steal_pointer (&self->jobs);

  self->jobs = g_ptr_array_new_with_free_func (g_object_unref);
  if (self->probe != NULL)
    {
      g_source_destroy (self->probe);
      g_clear_pointer (&self->probe, g_source_unref);
    }
  /* The waiting ones end now, cancelled; the running one is cancelled and waited for (a
   * generation checks between tokens), and reports its end to the main context without us. */
  for (guint i = 0; jobs != NULL && i < jobs->len; i++)
    {
      AtelierJob *job = g_ptr_array_index (jobs, i);

      job->queue = NULL;
      g_cancellable_cancel (job->cancellable);
      if (job != self->running)
        job_end (job, ATELIER_JOB_CANCELLED, NULL);
    }
  self->running = NULL;
  g_clear_pointer (&self->thread, g_thread_join);
  G_OBJECT_CLASS (atelier_job_queue_parent_class)->dispose (object);
}

static void
atelier_job_queue_finalize (GObject *object)
{
  AtelierJobQueue *self = ATELIER_JOB_QUEUE (object);

  g_ptr_array_unref (self->jobs);
  g_array_unref (self->lateness);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (atelier_job_queue_parent_class)->finalize (object);
}

static void
atelier_job_queue_class_init (AtelierJobQueueClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atelier_job_queue_dispose;
  object_class->finalize = atelier_job_queue_finalize;
}

static void
atelier_job_queue_init (AtelierJobQueue *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->jobs = g_ptr_array_new_with_free_func (g_object_unref);
  self->lateness = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->profile = g_strcmp0 (g_getenv ("ATELIER_PROFILE"), "1") == 0;
}

AtelierJobQueue *
atelier_job_queue_new (void)
{
  return g_object_new (ATELIER_TYPE_JOB_QUEUE, NULL);
}

void
atelier_job_queue_push (AtelierJobQueue *self, AtelierJob *job)
{
  g_return_if_fail (ATELIER_IS_JOB_QUEUE (self));
  g_return_if_fail (ATELIER_IS_JOB (job));
  g_return_if_fail (job->context == NULL && job->state == ATELIER_JOB_QUEUED);

  job->context = g_main_context_ref (self->context);
  job->queue = self;
  g_ptr_array_add (self->jobs, g_object_ref (job));
  g_list_model_items_changed (G_LIST_MODEL (self), self->jobs->len - 1, 0, 1);
  queue_start_next (self);
  /* Cancelled before it was pushed: it ends now, as it would have waiting in the queue. */
  if (job->state == ATELIER_JOB_QUEUED && g_cancellable_is_cancelled (job->cancellable))
    atelier_job_cancel (job);
}

AtelierJob *
atelier_job_queue_get_running (AtelierJobQueue *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB_QUEUE (self), NULL);
  return self->running;
}

void
atelier_job_queue_cancel_all (AtelierJobQueue *self)
{
  g_autoptr (GPtrArray) jobs = NULL;

  g_return_if_fail (ATELIER_IS_JOB_QUEUE (self));
  /* A copy: cancelling a queued job removes it from `jobs`. The waiting ones go first, so
   * that the running one's end does not start one of them. */
  jobs = g_ptr_array_new_full (self->jobs->len, g_object_unref);
  for (guint i = 0; i < self->jobs->len; i++)
    g_ptr_array_add (jobs, g_object_ref (g_ptr_array_index (self->jobs, i)));
  for (guint i = jobs->len; i > 0; i--)
    atelier_job_cancel (g_ptr_array_index (jobs, i - 1));
}

gint64
atelier_job_queue_get_max_latency (AtelierJobQueue *self)
{
  g_return_val_if_fail (ATELIER_IS_JOB_QUEUE (self), 0);
  return self->max_latency;
}
