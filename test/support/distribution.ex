defmodule Keyring.Test.Distribution do
  @moduledoc false
  # Makes the test VM a distributed node (needed by :peer tests and gossip).

  def ensure_started! do
    unless Node.alive?() do
      System.cmd("epmd", ["-daemon"])
      name = :"keyring_test_#{System.pid()}_#{System.unique_integer([:positive])}@127.0.0.1"

      case Node.start(name, :longnames) do
        {:ok, _} -> :ok
        {:error, {:already_started, _}} -> :ok
      end

      Node.set_cookie(:keyring_test_cookie)
    end

    :ok
  end
end
