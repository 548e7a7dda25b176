defmodule Keyring.Test.Distribution do
  @moduledoc false
  # Makes the test VM a distributed node (needed by :peer tests and gossip).

  def ensure_started! do
    unless Node.alive?() do
      System.cmd("epmd", ["-daemon"])
      name = :"keyring_test_#{System.pid()}_#{System.unique_integer([:positive])}@127.0.0.1"
      :application.set_env(:kernel, :inet_dist_use_interface, {127, 0, 0, 1})

      case Node.start(name, :longnames) do
        {:ok, _} -> :ok
        {:error, {:already_started, _}} -> :ok
      end

      Node.set_cookie(cookie())
    end

    :ok
  end

  @doc "The cookie of this test run's VMs: random, drawn once per run."
  def cookie do
    key = {__MODULE__, :cookie}

    with nil <- :persistent_term.get(key, nil) do
      # Tests start VMs concurrently: one of them draws the cookie.
      :global.trans(
        {key, self()},
        fn ->
          with nil <- :persistent_term.get(key, nil) do
            cookie = :"t#{Base.encode32(:crypto.strong_rand_bytes(20), padding: false)}"
            :persistent_term.put(key, cookie)
            cookie
          end
        end,
        [node()]
      )
    end
  end
end
