/* cli.h — the subcommands of bin/reluscope (main.c dispatches). Each returns
 * the process exit code and handles its own --help. */
#ifndef RELUSCOPE_CLI_H
#define RELUSCOPE_CLI_H
int cmd_train(int argc, char **argv);    /* train.c   */
/* SIGUSR1/SIGTERM -> finish the step, checkpoint, exit 75 (train.c): main()
 * installs it before MPI_Init, so an early preemption signal is not fatal. */
void train_install_signals(void);
int cmd_eval(int argc, char **argv);     /* eval.c    */
int cmd_prepare(int argc, char **argv);  /* prepare.c */
int cmd_merge(int argc, char **argv);    /* merge.c   */
int cmd_plan(int argc, char **argv);     /* plan.c    */
int cmd_export(int argc, char **argv);   /* export.c  */
int cmd_schema(int argc, char **argv);   /* merge.c   */
#endif
