defmodule Mix.Tasks.Keyring.Invite do
  @shortdoc "Makes an invite to a keyring"
  @moduledoc """
  Prints an invite (`kr1...`) to the keyring `RING` (its id), signed by this
  node, which must be an admin of it.

      mix keyring.invite RING --address HOST:PORT --join-address HOST:PORT \\
        [--ttl MS] [--reusable] [--role ROLE]...

  `--address` and `--join-address` are where the running admin node's member
  and join endpoints listen (its `mesh: [port: ..., join_port: ...]`); the
  joiner contacts them. Options: `--ttl` (default one day), `--reusable`
  (default: one-time), `--role` (repeatable), `--data-dir`, `--passphrase`.
  """
  use Mix.Task

  @switches [
    data_dir: :string,
    passphrase: :string,
    address: :string,
    join_address: :string,
    ttl: :integer,
    reusable: :boolean,
    role: :keep
  ]

  @impl Mix.Task
  def run(args) do
    {opts, rest} = OptionParser.parse!(args, strict: @switches)

    ring =
      case rest do
        [ring] ->
          ring

        _ ->
          Mix.raise("usage: mix keyring.invite RING --address HOST:PORT --join-address HOST:PORT")
      end

    address = opts[:address] || Mix.raise("--address HOST:PORT is required")
    join = opts[:join_address] || Mix.raise("--join-address HOST:PORT is required")
    Mix.Task.run("app.start", ["--no-start"])
    Application.put_env(:keyring, :autostart, false)
    {:ok, _} = Application.ensure_all_started(:keyring)

    instance =
      Mix.Tasks.Keyring.Keyring.instance_opts(opts) ++
        [mesh: [advertise: address, advertise_join: join]]

    {:ok, _} = Keyring.start_link(instance)

    invite_opts =
      [instance: :keyring_cli, one_time: !opts[:reusable], roles: Keyword.get_values(opts, :role)] ++
        if(opts[:ttl], do: [ttl: opts[:ttl]], else: [])

    case Keyring.Ring.invite(ring, invite_opts) do
      {:ok, invite} -> Mix.shell().info(invite)
      {:error, reason} -> Mix.raise("could not make an invite: #{inspect(reason)}")
    end
  end
end
