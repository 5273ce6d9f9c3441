/* test-jobs.c: the job queue (app/atelier-jobs.c) with plain job functions, no engine: order
 * and exclusion, streamed text under many tiny pieces, coalesced progress, cancel of a queued
 * and of a running job, failure, the list model's changes, a main loop that keeps turning
 * while a job busy-waits, the latency report (ATELIER_PROFILE=1), and a queue finalized under
 * a running job. */
#include <string.h>
#include <unistd.h>

#include "atelier-jobs.h"

static GThread *main_thread;

/* Turns the main loop until `*flag` is set; fails after 10 s rather than hang. */
static void
wait_for (const gboolean *flag)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!*flag)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      /* Not blocking: a job's end may come while no source is ready yet. */
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (200);
    }
}

static void
on_finished_set (AtelierJob *job, gboolean *flag)
{
  g_assert_true (g_thread_self () == main_thread);
  g_assert_true (atelier_job_is_finished (job));
  *flag = TRUE;
}

static void
wait_job (AtelierJob *job)
{
  gboolean done = atelier_job_is_finished (job);
  gulong id = g_signal_connect (job, "finished", G_CALLBACK (on_finished_set), &done);

  wait_for (&done);
  g_signal_handler_disconnect (job, id);
}

/* ---- order ---- */

typedef struct
{
  GMutex lock;
  int order[8];
  int n_started;
  int running, max_running;
} Order;

typedef struct
{
  Order *order;
  int index;
} OrderJob;

static gboolean
order_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  OrderJob *oj = data;
  Order *o = oj->order;

  g_assert_true (g_thread_self () != main_thread);
  g_mutex_lock (&o->lock);
  o->order[o->n_started++] = oj->index;
  o->running++;
  o->max_running = MAX (o->max_running, o->running);
  g_mutex_unlock (&o->lock);
  g_usleep (20000);
  g_mutex_lock (&o->lock);
  o->running--;
  g_mutex_unlock (&o->lock);
  return TRUE;
}

static void
free_on_main (gpointer data)
{
  /* The data is destroyed on the queue's context. */
  g_assert_true (g_thread_self () == main_thread);
  g_free (data);
}

static void
test_order (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  AtelierJob *jobs[3];
  Order o = { 0 };

  g_mutex_init (&o.lock);
  for (int i = 0; i < 3; i++)
    {
      OrderJob *oj = g_new0 (OrderJob, 1);

      oj->order = &o;
      oj->index = i;
      jobs[i] = atelier_job_new ("order", order_func, oj, free_on_main);
      atelier_job_queue_push (queue, jobs[i]);
    }
  g_assert_true (atelier_job_queue_get_running (queue) == jobs[0]);
  g_assert_cmpint (atelier_job_get_state (jobs[1]), ==, ATELIER_JOB_QUEUED);
  wait_job (jobs[2]);
  g_assert_cmpint (o.n_started, ==, 3);
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpint (o.order[i], ==, i);
      g_assert_cmpint (atelier_job_get_state (jobs[i]), ==, ATELIER_JOB_DONE);
      g_object_unref (jobs[i]);
    }
  g_assert_cmpint (o.max_running, ==, 1);
  g_assert_null (atelier_job_queue_get_running (queue));
  g_mutex_clear (&o.lock);
}

/* ---- streamed text ---- */

#define N_PIECES 20000

static gboolean
stream_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  char piece[16];

  for (guint i = 0; i < N_PIECES; i++)
    {
      g_snprintf (piece, sizeof piece, "%u,", i);
      atelier_job_stream (job, piece);
      if (i % 1000 == 0)
        g_usleep (1000);
    }
  return TRUE;
}

typedef struct
{
  GString *got;
  guint n_emissions;
  gsize len_at_finish;
} StreamSeen;

static void
on_stream (AtelierJob *job, const char *piece, StreamSeen *seen)
{
  g_assert_true (g_thread_self () == main_thread);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_RUNNING);
  g_string_append (seen->got, piece);
  seen->n_emissions++;
}

static void
on_stream_finished (AtelierJob *job, StreamSeen *seen)
{
  seen->len_at_finish = seen->got->len;
}

static void
test_stream (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = atelier_job_new ("stream", stream_func, NULL, NULL);
  g_autoptr (GString) want = g_string_new (NULL);
  StreamSeen seen = { g_string_new (NULL), 0, 0 };

  for (guint i = 0; i < N_PIECES; i++)
    g_string_append_printf (want, "%u,", i);
  g_signal_connect (job, "stream", G_CALLBACK (on_stream), &seen);
  g_signal_connect (job, "finished", G_CALLBACK (on_stream_finished), &seen);
  atelier_job_queue_push (queue, job);
  wait_job (job);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_DONE);
  g_assert_cmpstr (seen.got->str, ==, want->str);
  g_assert_cmpstr (atelier_job_get_text (job), ==, want->str);
  /* Everything had arrived when "finished" came. */
  g_assert_cmpuint (seen.len_at_finish, ==, want->len);
  /* Joined, not one emission a piece. */
  g_assert_cmpuint (seen.n_emissions, <, N_PIECES);
  g_test_message ("%u pieces in %u emissions", N_PIECES, seen.n_emissions);
  g_string_free (seen.got, TRUE);
}

/* ---- progress ---- */

static gboolean
progress_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  atelier_job_report (job, 0.5, "half");
  g_usleep (100000);
  for (guint i = 0; i <= 10000; i++)
    atelier_job_report (job, i / 10000.0, i == 10000 ? "all" : "some");
  return TRUE;
}

typedef struct
{
  guint n_fraction, n_status;
  gboolean saw_half;
} ProgressSeen;

static void
on_fraction (AtelierJob *job, GParamSpec *pspec, ProgressSeen *seen)
{
  g_assert_true (g_thread_self () == main_thread);
  seen->n_fraction++;
  if (atelier_job_get_fraction (job) == 0.5 && g_strcmp0 (atelier_job_get_status (job), "half") == 0)
    seen->saw_half = TRUE;
}

static void
on_status (AtelierJob *job, GParamSpec *pspec, ProgressSeen *seen)
{
  seen->n_status++;
}

static void
test_progress (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = atelier_job_new ("progress", progress_func, NULL, NULL);
  ProgressSeen seen = { 0 };

  g_assert_cmpfloat (atelier_job_get_fraction (job), ==, -1);
  g_signal_connect (job, "notify::fraction", G_CALLBACK (on_fraction), &seen);
  g_signal_connect (job, "notify::status", G_CALLBACK (on_status), &seen);
  atelier_job_queue_push (queue, job);
  wait_job (job);
  /* The 0.5 was seen while the job slept; the burst of 10,001 reports was coalesced. */
  g_assert_true (seen.saw_half);
  g_assert_cmpuint (seen.n_fraction, >=, 2);
  g_assert_cmpuint (seen.n_fraction, <, 100);
  g_assert_cmpuint (seen.n_status, >=, 2);
  g_assert_cmpfloat (atelier_job_get_fraction (job), ==, 1.0);
  g_assert_cmpstr (atelier_job_get_status (job), ==, "all");
}

/* ---- cancel ---- */

/* Runs until cancelled, checking every millisecond. */
static gboolean
until_cancelled_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  gboolean *started = data;

  g_atomic_int_set (started, TRUE);
  while (!g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

static gboolean
mark_ran_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  g_atomic_int_set ((gboolean *) data, TRUE);
  return TRUE;
}

static void
on_finished_count (AtelierJob *job, guint *count)
{
  (*count)++;
}

static void
test_cancel_queued (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  gboolean a_started = FALSE, b_ran = FALSE;
  g_autoptr (AtelierJob) a = atelier_job_new ("a", until_cancelled_func, &a_started, NULL);
  g_autoptr (AtelierJob) b = atelier_job_new ("b", mark_ran_func, &b_ran, NULL);
  guint b_finished = 0;

  g_signal_connect (b, "finished", G_CALLBACK (on_finished_count), &b_finished);
  atelier_job_queue_push (queue, a);
  atelier_job_queue_push (queue, b);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 2);
  /* From the main thread a queued job ends at once. */
  atelier_job_cancel (b);
  g_assert_cmpint (atelier_job_get_state (b), ==, ATELIER_JOB_CANCELLED);
  g_assert_cmpuint (b_finished, ==, 1);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 1);
  g_assert_null (atelier_job_get_error (b));
  atelier_job_cancel (a);
  wait_job (a);
  g_assert_cmpint (atelier_job_get_state (a), ==, ATELIER_JOB_CANCELLED);
  /* A cancel is not a failure, even when the function said G_IO_ERROR_CANCELLED. */
  g_assert_null (atelier_job_get_error (a));
  /* Let anything left run out: B must never start. */
  for (int i = 0; i < 20; i++)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_false (g_atomic_int_get (&b_ran));
  g_assert_cmpuint (b_finished, ==, 1);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 0);
}

static gpointer
cancel_from_thread (gpointer data)
{
  atelier_job_cancel (data);
  return NULL;
}

static void
test_cancel_running (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  gboolean started = FALSE, c_ran = FALSE;
  g_autoptr (AtelierJob) job = atelier_job_new ("spin", until_cancelled_func, &started, NULL);
  g_autoptr (AtelierJob) c = atelier_job_new ("c", mark_ran_func, &c_ran, NULL);
  gint64 t0;

  atelier_job_queue_push (queue, job);
  atelier_job_queue_push (queue, c);
  while (!g_atomic_int_get (&started))
    g_usleep (1000);
  g_main_context_iteration (NULL, FALSE);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_RUNNING);
  t0 = g_get_monotonic_time ();
  /* Any thread may cancel. */
  g_thread_join (g_thread_new ("canceller", cancel_from_thread, job));
  wait_job (job);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC / 2);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_CANCELLED);
  /* The next one runs after a cancelled one. */
  wait_job (c);
  g_assert_cmpint (atelier_job_get_state (c), ==, ATELIER_JOB_DONE);
  g_assert_true (g_atomic_int_get (&c_ran));
}

static void
test_cancel_all (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  gboolean started = FALSE, ran[2] = { FALSE, FALSE };
  g_autoptr (AtelierJob) a = atelier_job_new ("a", until_cancelled_func, &started, NULL);
  g_autoptr (AtelierJob) b = atelier_job_new ("b", mark_ran_func, &ran[0], NULL);
  g_autoptr (AtelierJob) c = atelier_job_new ("c", mark_ran_func, &ran[1], NULL);

  atelier_job_queue_push (queue, a);
  atelier_job_queue_push (queue, b);
  atelier_job_queue_push (queue, c);
  atelier_job_queue_cancel_all (queue);
  wait_job (a);
  g_assert_cmpint (atelier_job_get_state (a), ==, ATELIER_JOB_CANCELLED);
  g_assert_cmpint (atelier_job_get_state (b), ==, ATELIER_JOB_CANCELLED);
  g_assert_cmpint (atelier_job_get_state (c), ==, ATELIER_JOB_CANCELLED);
  g_assert_false (ran[0] || ran[1]);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 0);
}

/* ---- failure ---- */

static gboolean
fail_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  atelier_job_stream (job, "partial");
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "the model file %s is gone", "/x/y.gguf");
  return FALSE;
}

static gboolean
fail_silently_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  return FALSE;
}

static void
test_fail (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = atelier_job_new ("fails", fail_func, NULL, NULL);
  g_autoptr (AtelierJob) silent = atelier_job_new ("silent", fail_silently_func, NULL, NULL);

  atelier_job_queue_push (queue, job);
  atelier_job_queue_push (queue, silent);
  wait_job (silent);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_FAILED);
  g_assert_error (atelier_job_get_error (job), G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (atelier_job_get_error (job)->message, ==, "the model file /x/y.gguf is gone");
  g_assert_cmpstr (atelier_job_get_text (job), ==, "partial");
  /* A function that fails without an error still fails, with a message naming the job. */
  g_assert_cmpint (atelier_job_get_state (silent), ==, ATELIER_JOB_FAILED);
  g_assert_nonnull (atelier_job_get_error (silent));
  g_assert_nonnull (strstr (atelier_job_get_error (silent)->message, "silent"));
}

/* ---- the list model ---- */

typedef struct
{
  guint added, removed;
} Changes;

static void
on_items_changed (GListModel *model, guint position, guint removed, guint added, Changes *c)
{
  c->added += added;
  c->removed += removed;
}

static gboolean
short_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  g_usleep (10000);
  atelier_job_set_result (job, g_strdup (data), g_free);
  return TRUE;
}

static void
test_list_model (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  GListModel *model = G_LIST_MODEL (queue);
  AtelierJob *jobs[3];
  Changes c = { 0 };

  g_assert_true (g_list_model_get_item_type (model) == ATELIER_TYPE_JOB);
  g_signal_connect (queue, "items-changed", G_CALLBACK (on_items_changed), &c);
  for (int i = 0; i < 3; i++)
    {
      jobs[i] = atelier_job_new ("short", short_func, (gpointer) (i == 0 ? "r0" : i == 1 ? "r1" : "r2"), NULL);
      atelier_job_queue_push (queue, jobs[i]);
    }
  g_assert_cmpuint (c.added, ==, 3);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 3);
  {
    g_autoptr (AtelierJob) first = g_list_model_get_item (model, 0);
    g_autoptr (AtelierJob) last = g_list_model_get_item (model, 2);

    g_assert_true (first == jobs[0] && first == atelier_job_queue_get_running (queue));
    g_assert_true (last == jobs[2]);
    g_assert_null (g_list_model_get_item (model, 3));
  }
  wait_job (jobs[2]);
  g_assert_cmpuint (c.removed, ==, 3);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 0);
  g_assert_cmpstr (atelier_job_get_result (jobs[1]), ==, "r1");
  for (int i = 0; i < 3; i++)
    g_object_unref (jobs[i]);
}

/* ---- the main loop stays free ---- */

static gboolean
busy_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  gint64 end = g_get_monotonic_time () + 300000;

  /* Busy, never yielding: the main loop must not care. */
  while (g_get_monotonic_time () < end)
    ;
  return TRUE;
}

static gboolean
count_tick (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

static void
test_main_loop_alive (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  g_autoptr (AtelierJob) job = atelier_job_new ("busy", busy_func, NULL, NULL);
  guint ticks = 0;
  guint id = g_timeout_add (2, count_tick, &ticks);

  atelier_job_queue_push (queue, job);
  wait_job (job);
  g_source_remove (id);
  /* 300 ms of a 2 ms timer: about 150 ticks if the loop never waits on the job. */
  g_test_message ("%u ticks while the job ran", ticks);
  g_assert_cmpuint (ticks, >=, 50);
}

/* ATELIER_PROFILE=1, in a subprocess (the variable is read when the queue is made). */
static void
test_profile (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr (AtelierJobQueue) queue = NULL;
      g_autoptr (AtelierJob) job = atelier_job_new ("busy", busy_func, NULL, NULL);

      g_setenv ("ATELIER_PROFILE", "1", TRUE);
      queue = atelier_job_queue_new ();
      atelier_job_queue_push (queue, job);
      wait_job (job);
      g_assert_cmpint (atelier_job_queue_get_max_latency (queue), >, 0);
      g_assert_cmpint (atelier_job_queue_get_max_latency (queue), <, G_USEC_PER_SEC / 4);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*job \"busy\": main loop latency worst *.* ms, p99 *.* ms over * ticks"
                             " (the worst * ms after the start)*");
}

static void
test_no_profile (void)
{
  g_autoptr (AtelierJobQueue) queue = NULL;
  g_autoptr (AtelierJob) job = atelier_job_new ("quiet", short_func, (gpointer) "x", NULL);

  if (g_getenv ("ATELIER_PROFILE") != NULL)
    {
      g_test_skip ("ATELIER_PROFILE is set");
      return;
    }
  queue = atelier_job_queue_new ();
  atelier_job_queue_push (queue, job);
  wait_job (job);
  g_assert_cmpint (atelier_job_queue_get_max_latency (queue), ==, 0);
}

/* ---- the queue goes away first ---- */

typedef struct
{
  gboolean started, returned, destroyed;
} Orphan;

static gboolean
orphan_func (AtelierJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  Orphan *o = data;

  g_atomic_int_set (&o->started, TRUE);
  while (!g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  /* Reports after the queue is gone must be harmless. */
  atelier_job_stream (job, "late");
  atelier_job_report (job, 0.9, "late");
  g_usleep (20000);
  g_atomic_int_set (&o->returned, TRUE);
  return TRUE;
}

static void
orphan_destroy (gpointer data)
{
  Orphan *o = data;

  g_assert_true (g_thread_self () == main_thread);
  o->destroyed = TRUE;
}

static void
test_queue_finalized (void)
{
  AtelierJobQueue *queue = atelier_job_queue_new ();
  Orphan o = { FALSE, FALSE, FALSE }, q = { FALSE, FALSE, FALSE };
  AtelierJob *running = atelier_job_new ("orphan", orphan_func, &o, orphan_destroy);
  g_autoptr (AtelierJob) queued = atelier_job_new ("queued", orphan_func, &q, orphan_destroy);

  atelier_job_queue_push (queue, running);
  atelier_job_queue_push (queue, queued);
  while (!g_atomic_int_get (&o.started))
    g_usleep (1000);
  /* The window closes: the queue goes while a job runs, and nobody holds the running job. */
  g_object_unref (queue);
  /* The queue waited for the job's function: its owner may now free what the job used. */
  g_assert_true (g_atomic_int_get (&o.returned));
  g_object_unref (running);
  g_assert_cmpint (atelier_job_get_state (queued), ==, ATELIER_JOB_CANCELLED);
  g_assert_true (q.destroyed);
  g_assert_false (g_atomic_int_get (&q.started));
  /* The running job still ends, and frees its data on the main context. */
  wait_for (&o.destroyed);
}

/* A queue made, used and finalized with a job still queued behind a running one, and a job
 * cancelled before it was ever pushed. */
static void
test_cancel_before_push (void)
{
  g_autoptr (AtelierJobQueue) queue = atelier_job_queue_new ();
  gboolean ran = FALSE;
  g_autoptr (AtelierJob) job = atelier_job_new ("early", mark_ran_func, &ran, NULL);

  gboolean a_started = FALSE, late_ran = FALSE;
  g_autoptr (AtelierJob) a = atelier_job_new ("a", until_cancelled_func, &a_started, NULL);
  g_autoptr (AtelierJob) late = atelier_job_new ("late", mark_ran_func, &late_ran, NULL);

  atelier_job_cancel (job);
  atelier_job_queue_push (queue, job);
  g_assert_cmpint (atelier_job_get_state (job), ==, ATELIER_JOB_CANCELLED);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 0);
  g_assert_false (ran);

  /* Behind a running job, it does not wait for that one to end. */
  atelier_job_queue_push (queue, a);
  atelier_job_cancel (late);
  atelier_job_queue_push (queue, late);
  g_assert_cmpint (atelier_job_get_state (late), ==, ATELIER_JOB_CANCELLED);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (queue)), ==, 1);
  atelier_job_cancel (a);
  wait_job (a);
  g_assert_false (g_atomic_int_get (&late_ran));
}

int
main (int argc, char **argv)
{
  /* Objects from plain malloc, so that AddressSanitizer sees a use of a freed queue: GLib 2.74
   * recycles GObject memory through GSlice's magazines otherwise, and reads G_SLICE before
   * main (a setenv here is too late), hence the one re-execution. */
  if (g_getenv ("G_SLICE") == NULL)
    {
      g_setenv ("G_SLICE", "always-malloc", TRUE);
      execv ("/proc/self/exe", argv);
    }
  g_test_init (&argc, &argv, NULL);
  main_thread = g_thread_self ();
  g_test_add_func ("/app/jobs/order", test_order);
  g_test_add_func ("/app/jobs/stream", test_stream);
  g_test_add_func ("/app/jobs/progress", test_progress);
  g_test_add_func ("/app/jobs/cancel-queued", test_cancel_queued);
  g_test_add_func ("/app/jobs/cancel-running", test_cancel_running);
  g_test_add_func ("/app/jobs/cancel-all", test_cancel_all);
  g_test_add_func ("/app/jobs/cancel-before-push", test_cancel_before_push);
  g_test_add_func ("/app/jobs/fail", test_fail);
  g_test_add_func ("/app/jobs/list-model", test_list_model);
  g_test_add_func ("/app/jobs/main-loop-alive", test_main_loop_alive);
  g_test_add_func ("/app/jobs/profile", test_profile);
  g_test_add_func ("/app/jobs/no-profile", test_no_profile);
  g_test_add_func ("/app/jobs/queue-finalized", test_queue_finalized);
  return g_test_run ();
}
